"""Distil static token vectors from the verified all-MiniLM-L6-v2 encoder (train time only).

Each vocabulary token is embedded alone (`[CLS] token [SEP]`, mean-pooled, as a one-word sentence), the
table is centred and reduced by PCA, and each row is weighted by a+p/(a+p(token)) (smooth inverse frequency,
p from token counts of the customer-service texts in the data folder), so frequent function words weigh
little in a sentence's mean. Only token counts are read from the data, never stored texts.

    scripts/distill-vectors --data ../shared/data --models models
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from parley.classifier import manifest
from parley.classifier.static_vectors import ARTIFACT
from parley.classifier.wordpiece import WordPiece

if TYPE_CHECKING:  # the encoder loads only when distilling
    from parley.classifier.training.minilm import MiniLM

DIMS = 256
SIF = 1e-3
BATCH = 512
# (folder, file, text column) of the texts whose token counts give the frequency weights; banking77's
# test split is left out, since the bot is evaluated on it.
CORPUS = (
    ("airline_sentiment", "Tweets.csv", "text"),
    ("twcs", "twcs_head5000.csv", "text"),
    ("bitext", "Bitext_Sample_Customer_Service_Training_Dataset.csv", "utterance"),
    ("banking77", "train.csv", "text"),
)


def corpus_texts(data: Path) -> Iterable[str]:
    for folder, name, column in CORPUS:
        path = Path(data) / folder / name
        if not path.exists():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                yield row[column] or ""


def token_weights(wordpiece: WordPiece, texts: Iterable[str], sif: float = SIF) -> np.ndarray:
    counts: Counter[int] = Counter()
    for text in texts:
        counts.update(wordpiece.encode(text))
    total = max(1, sum(counts.values()))
    p = np.zeros(len(wordpiece.vocab))
    for token, n in counts.items():
        p[token] = n / total
    return sif / (sif + p)


def distill(
    encoder: MiniLM, texts: Iterable[str], dims: int = DIMS, say: Callable[[str], None] = print
) -> tuple[list[str], np.ndarray]:
    """(vocabulary, weighted static vectors) from an encoder with `vocab` and `embed_ids`."""
    from sklearn.decomposition import PCA

    vocab = list(encoder.vocab)
    started = time.perf_counter()
    rows = []
    for start in range(0, len(vocab), BATCH):
        rows.append(encoder.embed_ids([[i] for i in range(start, min(len(vocab), start + BATCH))]))
        if start % (BATCH * 10) == 0:
            done = start + len(rows[-1])
            say(f"{done} / {len(vocab)} tokens embedded ({time.perf_counter() - started:.0f}s)")
    table = np.concatenate(rows)
    reduced = PCA(n_components=min(dims, table.shape[1]), svd_solver="full").fit_transform(table)
    weights = token_weights(WordPiece(vocab), texts)
    return vocab, (reduced * weights[:, None]).astype(np.float16)


def write(models_dir: Path, vocab: list[str], vectors: np.ndarray) -> Path:
    """Save the artifact and rewrite the manifest, so the classifier will load it."""
    path = Path(models_dir) / ARTIFACT
    with path.open("wb") as f:
        np.savez_compressed(f, vocab=np.array(vocab), vectors=vectors)
    manifest.write(models_dir)
    return path


def main(data: Path, models_dir: Path) -> Path:
    from parley.classifier.training.minilm import MiniLM

    encoder = MiniLM()
    vocab, vectors = distill(encoder, corpus_texts(data))
    return write(models_dir, vocab, vectors)
