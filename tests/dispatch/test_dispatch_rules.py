"""Channel text rules: the X thread split and the length limits elsewhere."""

from __future__ import annotations

import re

import pytest

from parley.dispatch import rules
from parley.v1 import common_pb2

X, PUBLIC, PRIVATE = common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PUBLIC, common_pb2.VISIBILITY_PRIVATE
NUMBERED = re.compile(r"^(\d+)/(\d+) (.*)$", re.DOTALL)


def words(n: int) -> str:
    return " ".join(f"word{i:04d}" for i in range(n))


def test_short_x_reply_is_one_unnumbered_part() -> None:
    assert rules.apply(X, PUBLIC, "Thanks, we are on it!") == ["Thanks, we are on it!"]


def test_exactly_280_characters_is_not_split() -> None:
    text = "a" * 280
    assert rules.apply(X, PUBLIC, text) == [text]


@pytest.mark.parametrize("count", [40, 100, 400, 1200])
def test_long_x_reply_becomes_a_numbered_thread_without_broken_words(count: int) -> None:
    text = words(count)
    parts = rules.apply(X, PUBLIC, text)
    assert isinstance(parts, list) and len(parts) > 1
    bodies = []
    for i, part in enumerate(parts, start=1):
        assert len(part) <= 280
        match = NUMBERED.match(part)
        assert match, part
        assert (int(match[1]), int(match[2])) == (i, len(parts))
        bodies.append(match[3])
    # Order preserved, nothing lost, every part ends and starts on a whole word.
    assert " ".join(bodies) == text
    for body in bodies:
        assert all(re.fullmatch(r"word\d{4}", w) for w in body.split(" "))


def test_thread_counter_widens_when_parts_reach_two_digits() -> None:
    parts = rules.split_thread(words(400))
    assert len(parts) >= 10
    assert parts[9].startswith(f"10/{len(parts)} ")
    assert all(len(p) <= 280 for p in parts)


def test_parts_are_filled_greedily() -> None:
    parts = rules.split_thread(words(100))  # 100 * 9 chars - 1 = 899 characters
    # After "n/4 " 276 characters remain: 30 eight-character words with their spaces (269); a 31st needs 278.
    assert [len(NUMBERED.match(p)[3].split(" ")) for p in parts] == [30, 30, 30, 10]


def test_a_word_longer_than_a_post_is_the_only_thing_cut() -> None:
    url = "https://example.com/" + "x" * 600
    parts = rules.split_thread(f"See {url} for details")
    assert all(len(p) <= 280 for p in parts)
    bodies = [NUMBERED.match(p)[3] for p in parts]
    assert bodies[0] == "See"
    assert "".join(bodies[1:-1]) + bodies[-1].split(" ")[0] == url
    assert bodies[-1].endswith(" for details")


def test_line_breaks_inside_a_part_are_kept() -> None:
    text = "Hello,\n\n" + words(60)
    parts = rules.split_thread(text)
    assert parts[0].startswith("1/")
    assert "Hello,\n\nword0000" in parts[0]


@pytest.mark.parametrize(
    ("channel", "visibility", "limit"),
    [
        (common_pb2.CHANNEL_MESSENGER, PRIVATE, 2000),
        (common_pb2.CHANNEL_WHATSAPP, PRIVATE, 4096),
        (common_pb2.CHANNEL_INSTAGRAM, PRIVATE, 1000),
        (common_pb2.CHANNEL_FACEBOOK, PUBLIC, 8000),
    ],
)
def test_other_channels_refuse_a_long_reply_instead_of_truncating(
    channel: int, visibility: int, limit: int
) -> None:
    assert rules.apply(channel, visibility, "a" * limit) == ["a" * limit]
    verdict = rules.apply(channel, visibility, "a" * (limit + 1))
    assert isinstance(verdict, rules.Refusal)
    assert str(limit) in verdict.reason and str(limit + 1) in verdict.reason


def test_a_channel_without_public_replies_is_refused() -> None:
    verdict = rules.apply(common_pb2.CHANNEL_WHATSAPP, PUBLIC, "hi")
    assert isinstance(verdict, rules.Refusal)
    assert "whatsapp" in verdict.reason
