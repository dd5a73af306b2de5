"""Fitting the intent and topic pipelines: per-source and per-class sample weights, the off-domain cap, and
compact saving of the fitted pipelines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from parley.classifier import manifest
from parley.classifier.model import build_classifier, build_pipeline
from parley.classifier.text import model_texts
from parley.classifier.training.sources import Row


def save_pipeline(pipeline: Pipeline, path: Path) -> None:
    """Save a fitted pipeline compactly.

    The vectorizer's `stop_words_` (every pruned term, kept only for introspection) is dropped, vocabulary
    indices become plain ints (skops would store each NumPy integer as its own file), and coefficients are
    stored as float32, which leaves predictions unchanged to the fourth decimal and halves the file.
    """
    import zipfile

    import skops.io as sio

    vectorizer = pipeline.named_steps["features"]
    if hasattr(vectorizer, "stop_words_"):
        del vectorizer.stop_words_
    vectorizer.vocabulary_ = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    clf = pipeline.named_steps["clf"]
    clf.coef_ = clf.coef_.astype(np.float32)
    clf.intercept_ = clf.intercept_.astype(np.float32)
    sio.dump(pipeline, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def source_weights(rows: list[Row], shares: dict[str, float]) -> np.ndarray:
    """Sample weights under which each source's rows together carry its share of the total weight.

    Without this the two large non-social sets (banking77, bitext) would outweigh the few hundred real
    social-media rows that look like production traffic. A row's own weight (hand labels) multiplies in.
    """
    counts = Counter(r.dataset for r in rows)
    total = sum(shares.get(d, 1.0) for d in counts)
    return np.array(
        [r.weight * shares.get(r.dataset, 1.0) / total * len(rows) / counts[r.dataset] for r in rows]
    )


def balance(labels: list[str], weights: np.ndarray) -> np.ndarray:
    """`weights` scaled so that every class carries the same total weight (what class_weight="balanced" does
    for unweighted rows), keeping the overall total."""
    totals: dict[str, float] = {}
    for label, w in zip(labels, weights, strict=True):
        totals[label] = totals.get(label, 0.0) + float(w)
    target = float(np.sum(weights)) / len(totals)
    return np.array([w * target / totals[label] for label, w in zip(labels, weights, strict=True)])


def off_domain_text(row: Row, off_domain: dict[str, Any]) -> str:
    """The text a row trains on: rows of the off-domain sets, written without any handle, address the brand
    as almost every social message does, so that a handle stops telling their classes apart from the rest."""
    if off_domain.get("address_brand") and row.dataset in off_domain.get("sources", ()):
        return "@brand " + row.text
    return row.text


def cap_off_domain(rows: list[Row], weights: np.ndarray, off_domain: dict[str, Any]) -> np.ndarray:
    """`weights` with the off-domain sources' rows scaled down wherever together they carry more than
    `max_class_share` of a class's weight (banking77 and team-written rows would otherwise be most of
    `urgent`, teaching the model what urgency looks like off social media)."""
    cap = off_domain.get("max_class_share")
    sources = set(off_domain.get("sources", ()))
    if cap is None or not sources:
        return weights
    out = weights.copy()
    for label in {r.intent for r in rows}:
        idx = np.array([i for i, r in enumerate(rows) if r.intent == label])
        off = np.array([rows[i].dataset in sources for i in idx])
        off_w, on_w = out[idx[off]].sum(), out[idx[~off]].sum()
        if on_w > 0 and off_w > cap * (off_w + on_w):
            # Scaled so that off / (off + on) == cap.
            out[idx[off]] *= cap * on_w / ((1 - cap) * off_w)
    return out


def fit_models(rows: list[Row], mapping: dict[str, Any]) -> tuple[Pipeline, Pipeline]:
    """The intent and topic pipelines fitted on `rows`; the topic model shares the intent model's features."""
    off_domain = mapping.get("off_domain", {})
    texts = model_texts(
        [off_domain_text(r, off_domain) for r in rows],
        [r.context for r in rows],
        [r.brand_reply for r in rows],
    )
    weights = source_weights(rows, mapping.get("source_shares", {}))
    model = mapping.get("model", {})
    intents = [r.intent for r in rows]
    weights = cap_off_domain(rows, weights, off_domain)
    intent = build_pipeline(c=model.get("intent_c", 4.0), min_df=model.get("min_df", 2))
    intent.fit(texts, intents, clf__sample_weight=balance(intents, weights))
    # The topic classifier reuses the intent model's fitted features, so serving transforms each text once.
    features = intent.named_steps["features"]
    topics = [r.topic for r in rows]
    # Every airline tweet is `travel`, so the topic model gives that source less weight than the intent model
    # does (chosen by cross-validation on the hand-labelled tweets).
    topic_shares = {**mapping.get("source_shares", {}), **mapping.get("topic_source_shares", {})}
    topic_weights = source_weights(rows, topic_shares)
    topic_clf = build_classifier(c=model.get("topic_c", 2.0)).fit(
        features.transform(texts), topics, sample_weight=balance(topics, topic_weights)
    )
    return intent, Pipeline([("features", features), ("clf", topic_clf)])


def save_models(intent: Pipeline, topic: Pipeline, out_dir: Path, version: str) -> None:
    save_pipeline(intent, out_dir / "intent.skops")
    save_pipeline(topic, out_dir / "topic.skops")
    # Written before evaluation so a Triager loads exactly what was saved; rewritten with figures at the end.
    (out_dir / "metrics.json").write_text(json.dumps({"model_version": version}))
    manifest.write(out_dir)
