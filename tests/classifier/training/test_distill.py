"""The regression that corrects token vectors towards the encoder's sentence embeddings (the encoder itself
is a train-time download and is not needed here: the regression is plain linear algebra)."""

from pathlib import Path

import numpy as np
import pytest

from parley.classifier.training.distill import excluded_texts, mean_pooling, regress


def test_mean_pooling_gives_each_text_the_mean_of_its_token_rows() -> None:
    table = np.arange(12, dtype=np.float64).reshape(4, 3)
    pooled = mean_pooling([[0, 1], [3], [2, 2, 3]], vocab_size=4) @ table
    assert np.allclose(pooled[0], (table[0] + table[1]) / 2)
    assert np.allclose(pooled[1], table[3])
    assert np.allclose(pooled[2], (2 * table[2] + table[3]) / 3)


def test_the_fitted_table_reproduces_the_texts_and_an_unused_token_keeps_its_scaled_prior() -> None:
    rng = np.random.default_rng(7)
    truth = rng.normal(size=(6, 4))
    texts = [list(rng.choice(5, size=rng.integers(1, 4))) for _ in range(60)]  # token 5 is never used
    pooling = mean_pooling(texts, vocab_size=6)
    targets = pooling @ truth
    prior = rng.normal(size=(6, 4))
    fitted = regress(prior, pooling, targets, ridge=1e-6)
    assert np.abs(pooling @ fitted - targets).max() < 1e-3
    assert np.abs(pooling @ prior - targets).max() > 0.5  # the prior alone is far off
    guess = pooling @ prior
    scale = (guess * targets).sum() / (guess * guess).sum()
    assert np.allclose(fitted[5], prior[5] * scale)


def test_a_large_ridge_keeps_the_table_at_its_prior() -> None:
    rng = np.random.default_rng(3)
    texts = [[0, 1], [1, 2], [2, 3]]
    pooling = mean_pooling(texts, vocab_size=4)
    prior = rng.normal(size=(4, 2))
    targets = pooling @ (prior * 2.0) + rng.normal(scale=0.1, size=(3, 2))
    loose, tight = regress(prior, pooling, targets, ridge=1e-6), regress(prior, pooling, targets, ridge=1e6)
    guess = pooling @ prior
    scaled = prior * (guess * targets).sum() / (guess * guess).sum()
    assert np.allclose(tight, scaled, atol=1e-4)
    assert np.abs(pooling @ loose - targets).sum() < np.abs(pooling @ tight - targets).sum()


def test_excluded_texts_are_the_text_column_stripped(tmp_path: Path) -> None:
    path = tmp_path / "dev.csv"
    path.write_text("text,label\n  block my card ,card_lost\nwhere is my refund,refund\n", encoding="utf-8")
    assert excluded_texts(path) == {"block my card", "where is my refund"}
    assert excluded_texts(None) == frozenset()
    with pytest.raises(FileNotFoundError):
        excluded_texts(tmp_path / "missing.csv")
