"""The fitted word 1–2-gram TF-IDF of the intent model, computed for a whole batch of tokenised texts.

scikit-learn counts n-grams document by document in Python; here every token of the batch is looked up in
one pass, bigrams are found by a vectorised binary search on pairs of word ids, and the counting, sublinear
TF, IDF weighting and L2 norm run as array operations. The result is the matrix `vectorizer.transform` gives
for the same texts, bit for bit (tests/classifier/test_scikit_learn_equality.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

_SENTINEL = "\x00"  # never a token


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """A fitted vocabulary as arrays: bigrams are found by binary search on a pair of word ids instead of
    building and hashing a string per pair of tokens."""

    # Every word of the vocabulary, then words that occur only inside bigrams (ids from n_features up).
    words: dict[str, int]
    n_features: int
    width: int
    keys: np.ndarray  # sorted word-id pair keys (first * width + second) of every bigram
    ids: np.ndarray  # the bigram's feature index, aligned with keys
    # By word id, whether the word begins (ends) some bigram; one entry more, False, for id -1 (unknown word).
    begins: np.ndarray
    ends: np.ndarray


def _vocabulary(vocabulary: dict[str, int]) -> _Vocabulary:
    words = {t: int(j) for t, j in vocabulary.items() if " " not in t}
    n_features = len(vocabulary)
    pairs = [(t.split(" "), int(j)) for t, j in vocabulary.items() if " " in t]
    for (a, b), _ in pairs:
        for w in (a, b):
            if w not in words:
                words[w] = n_features + len(words)
    width = n_features + len(words)
    keys = np.array([words[a] * width + words[b] for (a, b), _ in pairs], dtype=np.int64)
    order = np.argsort(keys)
    ids = np.array([j for _, j in pairs], dtype=np.int64)
    begins = np.zeros(width + 1, dtype=bool)
    ends = np.zeros(width + 1, dtype=bool)
    begins[keys // width] = True
    ends[keys % width] = True
    return _Vocabulary(words, n_features, width, keys[order], ids[order], begins, ends)


class Tfidf:
    """`vectorizer.transform` for token lists, for the vectorizers `model.build_vectorizer` makes (word 1–2
    grams, sublinear TF, L2 norm)."""

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        params = vectorizer.get_params()
        expected = {"ngram_range": (1, 2), "sublinear_tf": True, "norm": "l2", "use_idf": True}
        wrong = {k: params[k] for k, v in expected.items() if params[k] != v}
        if wrong:
            raise ValueError(f"the batched TF-IDF computes word 1-2-gram sublinear L2 TF-IDF, not {wrong}")
        self.vocabulary = _vocabulary(vectorizer.vocabulary_)
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float32)

    def transform(self, token_lists: Sequence[list[str]]) -> sp.csr_matrix:
        """The TF-IDF matrix of texts already split into tokens (lower-cased), one row per list."""
        lookup = self.vocabulary
        flat: list[str] = []
        for toks in token_lists:
            flat += toks
            flat.append(_SENTINEL)  # never a word: no bigram spans two messages
        n = len(flat)
        doc = np.repeat(np.arange(len(token_lists)), [len(toks) + 1 for toks in token_lists])
        word = np.fromiter(map(lookup.words.get, flat, repeat(-1)), dtype=np.int64, count=n)
        first, second = word[:-1], word[1:]
        pos = np.flatnonzero(lookup.begins[first] & lookup.ends[second])
        keys = first[pos] * lookup.width + second[pos]
        at = np.minimum(np.searchsorted(lookup.keys, keys), max(len(lookup.keys) - 1, 0))
        hit = lookup.keys[at] == keys if len(lookup.keys) else np.zeros(len(keys), dtype=bool)
        uni = (word >= 0) & (word < lookup.n_features)
        ids = np.concatenate([word[uni], lookup.ids[at[hit]]])
        rows = np.concatenate([doc[uni], doc[pos[hit]]])
        # Counted by sorting (row, feature) keys: the sorted distinct keys are the matrix in CSR order.
        n_docs, n_features = len(token_lists), lookup.n_features
        cell, count = np.unique(rows * n_features + ids, return_counts=True)
        columns = cell % n_features
        indptr = np.searchsorted(cell, np.arange(n_docs + 1) * n_features)
        data = (np.log(count.astype(np.float32)) + np.float32(1.0)) * self.idf[columns]
        _normalize_rows_l2(data, indptr)
        return sp.csr_matrix(
            (data, columns.astype(np.int32), indptr.astype(np.int32)), shape=(n_docs, n_features)
        )


def _normalize_rows_l2(data: np.ndarray, indptr: np.ndarray) -> None:
    """Each CSR row of float32 `data` divided by its L2 norm, in place, with the arithmetic of
    scikit-learn's normalize(norm="l2"): float32 squares summed in float64 in row order, the quotient
    rounded back to float32; an all-zero row stays as it is."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    squares = np.square(data).astype(np.float64)
    norms = np.sqrt(np.bincount(rows, weights=squares, minlength=len(indptr) - 1))
    norms[norms == 0.0] = 1.0
    data[:] = data / norms[rows]
