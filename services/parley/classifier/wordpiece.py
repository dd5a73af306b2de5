"""BERT's uncased WordPiece tokenization, as the all-MiniLM-L6-v2 tokenizer does it: lower-case, accents
stripped, split on whitespace and punctuation (each punctuation character its own token, Chinese characters
too), then each word into the longest vocabulary pieces from its start, continuations marked `##`; a word
that cannot be split, or is longer than 100 characters, is `[UNK]`.

Pure Python on purpose: serving embeds queries with static token vectors and needs only the token ids.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

UNK = "[UNK]"
MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_words(text: str) -> list[str]:
    """The words BERT's basic tokenizer makes of `text` (lower-cased, accents stripped)."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            cleaned.append(" ")
        elif _is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    words = []
    for token in "".join(cleaned).lower().split():
        token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
        current: list[str] = []
        for ch in token:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


class WordPiece:
    """Token ids of texts for one vocabulary (its lines in order, as in vocab.txt)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.vocab = list(vocab)
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        self.unk = self.ids[UNK]
        self.word_ids = lru_cache(maxsize=65536)(self._word_ids)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`, without [CLS] and [SEP]."""
        out: list[int] = []
        for word in basic_words(text):
            out.extend(self.word_ids(word))
        return out
