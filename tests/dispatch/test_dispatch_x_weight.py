"""X's weighted length (twitter-text v3 rules) and the split of a long public reply into a fitting thread."""

from __future__ import annotations

import pytest

from parley.dispatch import rules
from parley.dispatch.rules import split_thread, x_weighted_length
from parley.v1 import common_pb2

X, PUBLIC, PRIVATE = common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PUBLIC, common_pb2.VISIBILITY_PRIVATE


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hello", 5),
        ("café", 4),  # Latin-1: 1 each
        ("cafe\u0301", 4),  # NFC makes e + combining accent one code point
        ("“quotes” – and", 14),  # quotes and dashes are in the light ranges
        ("wait…", 6),  # the ellipsis is not: 2
        ("日本語", 6),  # CJK: 2 each
        ("안녕", 4),  # Hangul: 2 each
        ("😀", 2),
        ("👍🏽", 2),  # with a skin tone: one emoji
        ("👨‍👩‍👧‍👦", 2),  # a ZWJ family: one emoji
        ("🇫🇷", 2),  # a flag: one emoji
        ("1️⃣", 2),  # a keycap
        ("https://example.com/a/very/long/path?with=query&and=more#fragment", 23),
        ("http://x.co", 23),  # a short URL still counts 23
        ("see example.com.", 4 + 23 + 1),  # a bare domain is a URL; the full stop is not part of it
        ("mail jane@example.com", 5 + 16),  # an email address is not a URL
        ("x" * 280, 280),
    ],
)
def test_weights(text: str, weight: int) -> None:
    assert x_weighted_length(text) == weight


def test_the_limit_is_weighted() -> None:
    assert rules.apply(X, PUBLIC, "a" * 280) == ["a" * 280]
    assert rules.apply(X, PUBLIC, "語" * 140) == ["語" * 140]
    # 141 CJK characters are 282 weighted: a thread, although far fewer than 280 code points.
    parts = rules.apply(X, PUBLIC, "語" * 141)
    assert isinstance(parts, list) and len(parts) == 2
    # A URL counts 23 whatever its length: 250 letters and a 400-character URL fit in one post.
    text = "a" * 250 + " https://example.com/" + "p" * 380
    assert rules.apply(X, PUBLIC, text) == [text]
    # X DMs are counted in plain characters.
    assert rules.apply(X, PRIVATE, "語" * 5000) == ["語" * 5000]


@pytest.mark.parametrize(
    "text",
    [
        " ".join(["update"] * 120),
        "ご注文の件で確認しています。" * 40,  # no spaces at all: cut between characters
        " ".join(["😀👍🏽🇫🇷"] * 120),
        "😀👍🏽👨‍👩‍👧🇫🇷" * 100,  # one long word of emoji: cut between emoji, never inside one
        " ".join(f"https://example.com/{i}/" + "z" * 90 for i in range(30)),  # URLs never cut
        ("Merci pour votre patience, nous regardons votre commande. " * 12) + " 日本語のお客様 " * 20,
    ],
)
def test_split_parts_fit_and_keep_everything(text: str) -> None:
    parts = split_thread(text, 280, x_weighted_length)
    total = len(parts)
    assert total > 1
    assert all(x_weighted_length(part) <= 280 for part in parts)
    assert [p.split(" ", 1)[0] for p in parts] == [f"{i}/{total}" for i in range(1, total + 1)]
    bodies = [p.split(" ", 1)[1] for p in parts]
    # Nothing is lost or reordered: the parts joined give back the words of the text.
    assert "".join("".join(b.split()) for b in bodies) == "".join(text.split())
    for url in (w for w in text.split() if w.startswith("https://")):
        assert any(url in b.split() for b in bodies)
    # No part starts with the tail of an emoji sequence (a skin tone, a joiner, a variation selector).
    assert not any(b[0] in "\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff\u200d\ufe0f" for b in bodies)


def test_split_uses_weight_not_code_points() -> None:
    text = "語" * 300
    parts = split_thread(text, 280, x_weighted_length)
    # Each part holds at most (280 - "n/3 ") / 2 characters.
    assert [len(p) for p in parts] == [4 + 138, 4 + 138, 4 + 24]
