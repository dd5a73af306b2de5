"""Distil static token vectors from the verified all-MiniLM-L6-v2 encoder (train time only).

1. Each vocabulary token is embedded alone (`[CLS] token [SEP]`, mean-pooled, as a one-word sentence) and
   weighted by a/(a+p(token)) (smooth inverse frequency, p from token counts of the customer-service texts in
   the data folder), so frequent function words weigh little in a sentence's mean.
2. That table is the prior of a regression: the encoder embeds every text of the same corpus, and the table
   is corrected so that the mean of a text's token vectors comes as near as it can to the encoder's embedding
   of the whole text (ridge regression towards the prior; a token the corpus never uses keeps its prior). A
   token embedded alone says little of what it does in a sentence ("charge" beside "card" or "battery"); the
   corpus says it.
3. The table is reduced to 256 dimensions by PCA.

Only token counts and the fitted table come from the data, never stored texts. Texts listed in `exclude`
(an evaluation's development queries) stay out of the corpus, so a threshold chosen on them is not flattered.

    scripts/distill-vectors --data ../shared/data --models models [--exclude dev.csv] [--corpus texts.csv]
"""

from __future__ import annotations

import csv
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from parley.classifier import manifest
from parley.classifier.static_vectors import ARTIFACT
from parley.classifier.wordpiece import WordPiece

if TYPE_CHECKING:  # the encoder loads only when distilling
    from parley.classifier.training.minilm import MiniLM

DIMS = 256
SIF = 1e-3
BATCH = 512
# The ridge penalty towards the prior table: of five from 0.001 to 0.1, the one whose fitted table
# came nearest the encoder (mean cosine) on a tenth of the corpus's texts held out of the fit.
RIDGE = 0.01
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


def token_table(encoder: MiniLM, say: Callable[[str], None] = print) -> np.ndarray:
    """The encoder's embedding of each vocabulary token alone, one row per token id."""
    vocab_size = len(encoder.vocab)
    started = time.perf_counter()
    rows = []
    for start in range(0, vocab_size, BATCH):
        rows.append(encoder.embed_ids([[i] for i in range(start, min(vocab_size, start + BATCH))]))
        if start % (BATCH * 10) == 0:
            elapsed = time.perf_counter() - started
            say(f"{start + len(rows[-1])} / {vocab_size} tokens embedded ({elapsed:.0f}s)")
    return np.concatenate(rows)


def mean_pooling(token_ids: list[list[int]], vocab_size: int) -> sp.csr_matrix:
    """A (texts x vocabulary) matrix whose product with a token table is each text's mean token vector."""
    lengths = np.array([len(ids) for ids in token_ids])
    rows = np.repeat(np.arange(len(token_ids)), lengths)
    cols = np.fromiter((t for ids in token_ids for t in ids), dtype=np.int64, count=len(rows))
    values = np.repeat(1.0 / np.maximum(lengths, 1), lengths)
    return sp.csr_matrix((values, (rows, cols)), shape=(len(token_ids), vocab_size))


def regress(
    prior: np.ndarray, pooling: sp.csr_matrix, targets: np.ndarray, ridge: float = RIDGE
) -> np.ndarray:
    """The token table whose text means come nearest `targets`, penalised by its distance from `prior`
    (first scaled to the targets as a whole); rows of tokens no text uses stay the scaled prior.

    Solved exactly on the tokens in use: (XᵀX + λI) Δ = Xᵀ(E − X·prior)."""
    import scipy.linalg

    guess = pooling @ prior
    scale = (guess * targets).sum() / max((guess * guess).sum(), 1e-12)
    used = np.flatnonzero(pooling.getnnz(axis=0))
    x = pooling[:, used].tocsc()
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += ridge
    correction = scipy.linalg.solve(gram, x.T @ (targets - scale * guess), assume_a="pos")
    table: np.ndarray = prior.astype(np.float64) * scale
    table[used] += correction
    return table


def distill(
    encoder: MiniLM,
    texts: Iterable[str],
    dims: int = DIMS,
    exclude: frozenset[str] = frozenset(),
    say: Callable[[str], None] = print,
) -> tuple[list[str], np.ndarray]:
    """(vocabulary, static vectors) from an encoder with `vocab`, `embed_ids` and `embed_many`."""
    from sklearn.decomposition import PCA

    vocab = list(encoder.vocab)
    wordpiece = WordPiece(vocab)
    stripped = (text.strip() for text in texts)
    corpus = list(dict.fromkeys(text for text in stripped if text and text not in exclude))
    weights = token_weights(wordpiece, corpus)
    prior = token_table(encoder, say) * weights[:, None]
    token_ids = [ids for ids in (wordpiece.encode(t) for t in corpus) if ids]
    targets = encoder.embed_many(token_ids, say)
    table = regress(prior, mean_pooling(token_ids, len(vocab)), targets)
    # Projected on the principal axes without centring: the offset all texts share stays, as the cosine
    # of the full-size vectors has it.
    axes = PCA(n_components=min(dims, table.shape[1]), svd_solver="full").fit(table).components_
    return vocab, (table @ axes.T).astype(np.float16)


def write(models_dir: Path, vocab: list[str], vectors: np.ndarray) -> Path:
    """Save the artifact and rewrite the manifest, so the classifier will load it."""
    path = Path(models_dir) / ARTIFACT
    with path.open("wb") as f:
        np.savez_compressed(f, vocab=np.array(vocab), vectors=vectors)
    manifest.write(models_dir)
    return path


def text_column(path: Path) -> list[str]:
    """The `text` column of a CSV (a brand's own customer texts, or an evaluation's development queries)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [(row.get("text") or "").strip() for row in csv.DictReader(f)]


def excluded_texts(path: Path | None) -> frozenset[str]:
    return frozenset() if path is None else frozenset(text_column(path))


def main(data: Path, models_dir: Path, exclude: Path | None = None, corpus: Sequence[Path] = ()) -> Path:
    """`corpus`: CSVs of a brand's own texts, fitted beside the data folder's."""
    from parley.classifier.training.minilm import MiniLM

    encoder = MiniLM()
    texts = itertools.chain(corpus_texts(data), *(text_column(path) for path in corpus))
    vocab, vectors = distill(encoder, texts, exclude=excluded_texts(exclude))
    return write(models_dir, vocab, vectors)
