"""Channel text rules: how long a reply may be on each network, and how a long X reply becomes a thread.

Pure functions. Lengths count Unicode code points; X's weighted counting (URLs as 23, CJK as 2) comes with
the X adapter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parley.messages import CHANNEL_NAMES
from parley.v1 import common_pb2

X_POST_LIMIT = 280

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


@dataclass(frozen=True)
class Refusal:
    """Why a reply cannot be sent as written."""

    reason: str


def apply(channel: int, visibility: int, text: str) -> list[str] | Refusal:
    """The parts to post for `text`, or the reason it cannot go out on this channel and visibility."""
    limit = LIMITS.get((channel, visibility))
    name = CHANNEL_NAMES.get(channel, str(channel))
    if limit is None:
        return Refusal(f"{name} does not take {_visibility_name(visibility)} replies")
    if len(text) <= limit:
        return [text]
    if (channel, visibility) in THREADED:
        return split_thread(text, limit)
    return Refusal(
        f"reply is {len(text)} characters; {name} {_visibility_name(visibility)} replies are limited to"
        f" {limit} (shorten it: it is not truncated)"
    )


def split_thread(text: str, limit: int = X_POST_LIMIT) -> list[str]:
    """Split `text` into numbered parts ("1/3 ...") of at most `limit` characters each, on word boundaries.

    Parts are slices of the original text (line breaks inside a part are kept). A word longer than a whole
    part is the only thing ever cut.
    """
    text = text.strip()
    if len(text) <= limit:
        return [text]
    # The prefix width depends on the number of parts; grow the guess until the split agrees with it.
    digits = 1
    while True:
        prefix_width = 2 * digits + 2  # "n/m " with both numbers `digits` wide at most
        chunks = _chunks(text, limit - prefix_width)
        if len(str(len(chunks))) <= digits:
            total = len(chunks)
            return [f"{i}/{total} {chunk}" for i, chunk in enumerate(chunks, start=1)]
        digits += 1


def _chunks(text: str, width: int) -> list[str]:
    """Greedy word wrap of `text` into slices of at most `width` characters."""
    chunks: list[str] = []
    start = end = -1  # the current chunk is text[start:end]
    for match in _WORD.finditer(text):
        w_start, w_end = match.span()
        if start >= 0 and w_end - start <= width:
            end = w_end
            continue
        if start >= 0:
            chunks.append(text[start:end])
        # A word wider than a whole chunk is cut into full-width pieces; its tail starts the next chunk.
        while w_end - w_start > width:
            chunks.append(text[w_start : w_start + width])
            w_start += width
        start, end = w_start, w_end
    if start >= 0:
        chunks.append(text[start:end])
    return chunks


def _visibility_name(visibility: int) -> str:
    return {common_pb2.VISIBILITY_PUBLIC: "public", common_pb2.VISIBILITY_PRIVATE: "private"}.get(
        visibility, "unspecified-visibility"
    )
