"""What the batched paths share: a batch of texts joined into one string and scanned once, and each offset of
that string traced back to the text it falls in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Joins the texts of a batch where no scan may run from one message into the next: whitespace to regular
# expressions and to str.split, and a control character that messages do not hold (`join` checks).
SEP = "\x1e"


def join(texts: Sequence[str]) -> str | None:
    """The texts joined by SEP, or None when some text holds SEP itself (or there are none), where the
    caller's per-text path applies instead."""
    joined = SEP.join(texts)
    return joined if joined.count(SEP) == len(texts) - 1 else None


def ends(texts: Sequence[str], gap: int) -> np.ndarray:
    """Where each text ends in the texts joined by a separator of `gap` characters, the separator after it
    included."""
    return np.cumsum([len(t) + gap for t in texts])


def owners(ends: np.ndarray, positions: Sequence[int] | np.ndarray) -> np.ndarray:
    """For each position of the joined string, the index of the text it falls in (a separator belongs to the
    text before it)."""
    found: np.ndarray = np.searchsorted(ends, positions, side="right")
    return found


def code_points(text: str) -> np.ndarray:
    """One array element per character; "surrogatepass" keeps any lone surrogate as one element too."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
