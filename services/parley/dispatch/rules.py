"""Channel text rules: how long a reply may be on each network, and how a long X reply becomes a thread.

Pure functions. X counts a post's length by weight, as its twitter-text library does (v3 configuration): the
text is NFC-normalised, every URL counts 23, an emoji (a whole sequence: skin tone, ZWJ family, flag, keycap)
counts 2, a code point in the Latin, punctuation and symbol ranges below counts 1 and any other (CJK, Hangul,
...) counts 2; a post holds 280. The other networks count Unicode code points.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from parley.messages import CHANNEL_NAMES
from parley.v1 import common_pb2

X_POST_LIMIT = 280
X_URL_WEIGHT = 23

# (channel, visibility) -> the longest text the network accepts. A Facebook private reply goes out through
# Messenger; X DMs accept 10,000 characters; Instagram DMs 1,000.
LIMITS: dict[tuple[int, int], int] = {
    (common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PUBLIC): X_POST_LIMIT,
    (common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PRIVATE): 10_000,
    (common_pb2.CHANNEL_FACEBOOK, common_pb2.VISIBILITY_PUBLIC): 8_000,
    (common_pb2.CHANNEL_FACEBOOK, common_pb2.VISIBILITY_PRIVATE): 2_000,
    (common_pb2.CHANNEL_MESSENGER, common_pb2.VISIBILITY_PRIVATE): 2_000,
    (common_pb2.CHANNEL_INSTAGRAM, common_pb2.VISIBILITY_PUBLIC): 1_000,
    (common_pb2.CHANNEL_INSTAGRAM, common_pb2.VISIBILITY_PRIVATE): 1_000,
    (common_pb2.CHANNEL_WHATSAPP, common_pb2.VISIBILITY_PRIVATE): 4_096,
}

# Only public X replies are split into a thread; everywhere else a long reply is refused, never truncated.
THREADED = {(common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PUBLIC)}

_WORD = re.compile(r"\S+")

# twitter-text v3: code points in these ranges weigh 1; all others 2.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

# A URL as X finds one: with a scheme, or a bare domain under a common top-level domain. Trailing
# punctuation is not part of it.
_URL = re.compile(
    r"(?:https?://[^\s<>\"']+|(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
    r"(?:com|net|org|edu|gov|info|biz|io|co|me|ly|app|dev|ai|uk|de|fr|es|it|nl|jp|us|eu|ca|au|in|br)"
    r"(?![\w-])(?::\d+)?(?:/[^\s<>\"']*)?)(?<![.,;:!?)\]'\"])",
    re.IGNORECASE,
)
# One emoji as a reader sees it: a flag (two regional indicators), a keycap, or a pictograph with its
# variation selector, skin tone and any ZWJ-joined followers.
_PICTO = r"[\u2600-\u27bf\U0001f000-\U0001faff](?:\ufe0f|[\U0001f3fb-\U0001f3ff])*"
_EMOJI = re.compile(rf"[\U0001f1e6-\U0001f1ff]{{2}}|[0-9#*]\ufe0f?\u20e3|{_PICTO}(?:\u200d{_PICTO})*")


# Code points outside the light ranges: each weighs one more than the light ones.
_HEAVY = re.compile("[^" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _LIGHT_RANGES) + "]")


def _range_weight(text: str) -> int:
    return len(text) + len(_HEAVY.findall(text))


def _plain_weight(text: str) -> int:
    """Weight of text holding no URL: emoji sequences 2 each, other code points by range."""
    if text.isascii():  # no emoji, every code point light
        return len(text)
    total = 0
    pos = 0
    for m in _EMOJI.finditer(text):
        total += _range_weight(text[pos : m.start()]) + 2
        pos = m.end()
    return total + _range_weight(text[pos:])


def x_weighted_length(text: str) -> int:
    """The length X counts for a post (280 fit)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    pos = 0
    for m in _URL.finditer(text):
        total += _plain_weight(text[pos : m.start()]) + X_URL_WEIGHT
        pos = m.end()
    return total + _plain_weight(text[pos:])


def measure(channel: int, visibility: int) -> Callable[[str], int]:
    """How the network counts a reply's length."""
    if (channel, visibility) == (common_pb2.CHANNEL_X, common_pb2.VISIBILITY_PUBLIC):
        return x_weighted_length
    return len


@dataclass(frozen=True)
class Refusal:
    """Why a reply cannot be sent as written."""

    reason: str


def apply(channel: common_pb2.Channel, visibility: common_pb2.Visibility, text: str) -> list[str] | Refusal:
    """The parts to post for `text`, or the reason it cannot go out on this channel and visibility."""
    limit = LIMITS.get((channel, visibility))
    name = CHANNEL_NAMES.get(channel, str(channel))
    if limit is None:
        return Refusal(f"{name} does not take {_visibility_name(visibility)} replies")
    length = measure(channel, visibility)
    if length(text) <= limit:
        return [text]
    if (channel, visibility) in THREADED:
        return split_thread(text, limit, length)
    return Refusal(
        f"reply is {len(text)} characters; {name} {_visibility_name(visibility)} replies are limited to"
        f" {limit} (shorten it: it is not truncated)"
    )


def split_thread(text: str, limit: int = X_POST_LIMIT, length: Callable[[str], int] = len) -> list[str]:
    """Split `text` into numbered parts ("1/3 ...") each at most `limit` long as `length` counts, on word
    boundaries.

    Parts are slices of the original text (line breaks inside a part are kept). A word longer than a whole
    part is the only thing ever cut (between code points, never inside an emoji sequence).
    """
    text = text.strip()
    if length(text) <= limit:
        return [text]
    # The prefix width depends on the number of parts; grow the guess until the split agrees with it.
    digits = 1
    while True:
        prefix_width = 2 * digits + 2  # "n/m " with both numbers `digits` wide at most (ASCII: weight 1)
        chunks = _chunks(text, limit - prefix_width, length)
        if len(str(len(chunks))) <= digits:
            total = len(chunks)
            return [f"{i}/{total} {chunk}" for i, chunk in enumerate(chunks, start=1)]
        digits += 1


def _chunks(text: str, width: int, length: Callable[[str], int]) -> list[str]:
    """Greedy word wrap of `text` into slices of at most `width` by `length`.

    Lengths add up word by word: a URL or an emoji sequence never spans whitespace, so the length of a slice
    is the sum of its words' and gaps' lengths.
    """
    chunks: list[str] = []
    start = end = -1  # the current chunk is text[start:end]
    used = 0
    for match in _WORD.finditer(text):
        w_start, w_end = match.span()
        word = length(text[w_start:w_end])
        if start >= 0:
            gap = length(text[end:w_start])
            if used + gap + word <= width:
                end, used = w_end, used + gap + word
                continue
            chunks.append(text[start:end])
        # A word wider than a whole chunk is cut into pieces that fit; its tail starts the next chunk.
        while word > width:
            cut = _cut(text, w_start, w_end, width, length)
            chunks.append(text[w_start:cut])
            w_start = cut
            word = length(text[w_start:w_end])
        start, end, used = w_start, w_end, word
    if start >= 0:
        chunks.append(text[start:end])
    return chunks


def _cut(text: str, start: int, end: int, width: int, length: Callable[[str], int]) -> int:
    """The furthest index in (start, end) such that text[start:index] fits `width`, on a cluster boundary."""
    best = start + 1
    pos = start
    while pos < end:
        m = _EMOJI.match(text, pos)
        nxt = m.end() if m else pos + 1
        if length(text[start:nxt]) > width:
            break
        best = pos = nxt
    return max(best, start + 1)


def _visibility_name(visibility: common_pb2.Visibility) -> str:
    return {common_pb2.VISIBILITY_PUBLIC: "public", common_pb2.VISIBILITY_PRIVATE: "private"}.get(
        visibility, "unspecified-visibility"
    )
