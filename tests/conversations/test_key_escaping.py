"""Key parts are escaped: no two distinct (brand, thread) pairs share a thread key."""

from __future__ import annotations

import pytest

from parley.conversations.core import Conversations
from parley.conversations.store import ConversationKeys
from parley.store import Keys, escape_key_part

from .builders import msg


def _on(message, brand: str, thread: str):  # noqa: ANN001, ANN202 - a builder tweak
    message.brand_account_id = brand
    message.platform_thread_id = thread
    return message


async def test_crafted_brand_and_thread_do_not_join_another_customers_conversation(
    core: Conversations,
) -> None:
    [victim] = await core.thread([_on(msg("v1", author="alice", private=True), "shop:dm", "42")])
    # "shop" + "dm:42" joined with ":" spells the victim's "shop:dm" + "42".
    [attacker] = await core.thread([_on(msg("a1", author="mallory", private=True, at=1), "shop", "dm:42")])
    assert attacker.conversation_id != victim.conversation_id


@pytest.mark.parametrize(
    "a, b",
    [
        (("a:b", "c"), ("a", "b:c")),
        (("a%3Ab", "c"), ("a:b", "c")),
        (("a", "b%3Ac"), ("a", "b:c")),
        (("a{x}", "c"), ("a", "{x}c")),
        (("", ":"), (":", "")),
    ],
)
def test_distinct_pairs_get_distinct_thread_keys(a: tuple[str, str], b: tuple[str, str]) -> None:
    store = ConversationKeys(Keys("p"))
    assert store.thread(1, *a) != store.thread(1, *b)


def test_plain_ids_keep_their_key() -> None:
    # Ids without ":", "%", "{" or "}" (every id the networks issue today) keep the key they had.
    assert ConversationKeys(Keys("p")).thread(1, "brand-1", "dm_7.x") == "p:thread:1:brand-1:dm_7.x"
    assert escape_key_part("a:b%{c}") == "a%3Ab%25%7Bc%7D"
