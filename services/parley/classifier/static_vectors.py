"""Static token vectors for the bot's semantic retrieval: a sentence is the mean of its WordPiece tokens'
vectors, L2-normalised. The vectors were distilled at train time from the all-MiniLM-L6-v2 encoder (see
`training/distill.py`); serving needs only this table and numpy, with a WordPiece tokenizer in pure Python.

The artifact (`models/static_vectors.npz`) holds `vocab` (the encoder's WordPiece vocabulary, in id order)
and `vectors` (one row per token, its frequency weight already applied); it is loaded only when it matches its
SHA-256 in `models/SHA256SUMS`, and never with pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from parley.classifier import manifest
from parley.classifier.wordpiece import WordPiece

ARTIFACT = "static_vectors.npz"
# The models folder this package ships (settings.models_dir's default).
SHIPPED_MODELS = Path(__file__).resolve().parents[3] / "models"


class StaticVectors:
    def __init__(self, vocab: Sequence[str], vectors: np.ndarray) -> None:
        if len(vocab) != len(vectors):
            raise ValueError(f"{len(vocab)} tokens but {len(vectors)} vectors")
        self.wordpiece = WordPiece(vocab)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.dims = self.vectors.shape[1]

    @classmethod
    def load(cls, models_dir: Path) -> StaticVectors:
        """The models folder's static vectors, refused unless they match the manifest."""
        path = Path(models_dir) / ARTIFACT
        listed = manifest.listed(Path(models_dir) / manifest.MANIFEST).get(ARTIFACT)
        if listed is None:
            raise manifest.ArtifactMismatch(f"{ARTIFACT} is not listed in {models_dir}/{manifest.MANIFEST}")
        actual = manifest.sha256(path)
        if actual != listed:
            raise manifest.ArtifactMismatch(
                f"{path} has SHA-256 {actual}, but the manifest lists {listed}: refusing to load it"
            )
        with np.load(path, allow_pickle=False) as data:
            return cls(data["vocab"].tolist(), data["vectors"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text (all zeros for a text without tokens)."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            ids = self.wordpiece.encode(text)
            if ids:
                out[i] = self.vectors[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


@cache
def shipped(models_dir: Path) -> StaticVectors:
    """The static vectors of a models folder, loaded once per process."""
    return StaticVectors.load(models_dir)
