"""`parley bot-eval`: the bot's retrieval on a brand's knowledge base, measured on labelled queries.

TEST is a CSV `text,label`, the label a KB intent or `oos` for a query the KB cannot answer. Each query is
looked up as the service looks up a question (the intent model decides earlier which messages are questions;
urgent and complaint messages never reach the bot). An answered `oos` query counts as a wrong answer.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from parley.classifier import static_vectors
from parley.classifier.kb_files import KnowledgeBaseError
from parley.classifier.knowledge import KnowledgeBase

OOS = "oos"
BATCH = 256
CURVE = (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)
TARGET_PRECISION = 0.95


def read_queries(path: Path, intents: set[str]) -> tuple[list[str], list[str]]:
    """(texts, labels) of a `text,label` CSV; every label must be a KB intent or `oos`."""
    texts, labels, problems = [], [], []
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"text", "label"} <= set(reader.fieldnames or []):
            raise KnowledgeBaseError(Path(path), ["line 1: expected columns text,label"])
        for row in reader:
            label = (row["label"] or "").strip()
            if label != OOS and label not in intents:
                problems.append(f"line {reader.line_num}: label {label!r} is neither a KB intent nor {OOS!r}")
            texts.append(row["text"] or "")
            labels.append(label)
    if problems:
        raise KnowledgeBaseError(
            Path(path), problems[:20] + ([f"... {len(problems) - 20} more"] * (len(problems) > 20))
        )
    return texts, labels


def figures(labels: list[str], predicted: np.ndarray, answered: np.ndarray) -> dict[str, Any]:
    """Precision of the answers given, coverage of the in-scope queries, and the share of `oos` answered."""
    truth = np.array(labels)
    in_scope = truth != OOS
    right = answered & (predicted == truth)
    n_answered = int(answered.sum())
    return {
        "answered": n_answered,
        "precision": float(right.sum() / n_answered) if n_answered else None,
        "coverage": float((answered & in_scope).sum() / in_scope.sum()) if in_scope.any() else None,
        "oos_answered": float((answered & ~in_scope).sum() / (~in_scope).sum())
        if (~in_scope).any()
        else None,
    }


def best_coverage(
    labels: list[str], predicted: np.ndarray, confidence: np.ndarray, precision: float
) -> dict[str, Any]:
    """The in-scope coverage of the lowest threshold whose answers still reach `precision` (what the best
    threshold could give on these queries: chosen on them, so an upper bound, not a result)."""
    best = {"threshold": None, "precision": None, "coverage": 0.0, "oos_answered": None}
    # Rounded down, so each candidate threshold still answers the query whose confidence it came from.
    for t in np.unique(np.floor(confidence * 1000) / 1000):
        row = figures(labels, predicted, confidence >= t)
        if (
            row["precision"] is not None
            and row["precision"] >= precision
            and row["coverage"] > best["coverage"]
        ):
            best = {"threshold": float(t), **{k: row[k] for k in ("precision", "coverage", "oos_answered")}}
    return best


def run(
    kb_path: Path,
    data_path: Path,
    out_path: Path,
    threshold: float | None = None,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    """Look up every query, write one JSON line per query in order, and return the summary. A CSV
    knowledge base retrieves with the static vectors of `models_dir` (default: the shipped models)."""
    static = static_vectors.shipped(Path(models_dir or static_vectors.SHIPPED_MODELS))
    kb = KnowledgeBase.from_file(kb_path, threshold=threshold, static=static)
    texts, labels = read_queries(data_path, {a.id for a in kb.answers})
    best: list[np.ndarray] = []
    confidence: list[np.ndarray] = []
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        index, conf = kb.scores(texts[start : start + BATCH])
        best.append(index)
        confidence.append(conf)
    elapsed = time.perf_counter() - started
    index = np.concatenate(best) if best else np.array([], dtype=int)
    conf = np.concatenate(confidence) if confidence else np.array([])
    ids = np.array([a.id for a in kb.answers], dtype=object)
    predicted = ids[index] if len(index) else np.array([], dtype=object)
    answered = conf >= kb.threshold
    with Path(out_path).open("w", encoding="utf-8") as out:
        for ok, intent, c in zip(answered.tolist(), predicted.tolist(), conf.tolist(), strict=True):
            out.write(
                json.dumps({"answered": ok, "intent": intent if ok else "", "confidence": round(c, 4)}) + "\n"
            )
    in_scope = [lab != OOS for lab in labels]
    return {
        "rows": len(texts),
        "in_scope": sum(in_scope),
        "oos": len(texts) - sum(in_scope),
        "kb_intents": len(kb.answers),
        "retrieval": kb.retrieval,
        "threshold": kb.threshold,
        **figures(labels, predicted, answered),
        "top_intent_accuracy": _top_accuracy(predicted, labels),
        "lookups_per_second": round(len(texts) / elapsed, 1) if elapsed > 0 else None,
        "curve": [{"threshold": t, **figures(labels, predicted, conf >= t)} for t in CURVE],
        "best_threshold_at_target_precision": best_coverage(labels, predicted, conf, TARGET_PRECISION),
    }


def _top_accuracy(predicted: np.ndarray, labels: list[str]) -> float | None:
    """How often the best answer is the right one on in-scope queries, whatever the confidence."""
    pairs = [(p, t) for p, t in zip(predicted.tolist(), labels, strict=True) if t != OOS]
    return sum(p == t for p, t in pairs) / len(pairs) if pairs else None
