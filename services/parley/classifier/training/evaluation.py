"""Measuring the models: scores and calibration on the test split, the hand-labelled held-out set, the
urgency rules, the second annotator and the bot; `parley eval` on a labelled CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from parley.classifier.model import INTENTS, TOPICS, Item, Triager
from parley.classifier.training import review_eval
from parley.classifier.training.labelling import (
    hand_label_files,
    heldout_items,
    load_bot_judgements,
    load_hand_labels,
    read_label_file,
    read_labelled_csv,
)
from parley.classifier.training.sources import Row, real_items


def scores(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1, accuracy and the confusion matrix (rows = truth)."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    present = [i for i, n in enumerate(s) if n > 0]
    return {
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "macro_f1": float(np.mean([f[i] for i in present])) if present else 0.0,
        "accuracy": float(np.mean([a == b for a, b in zip(y_true, y_pred, strict=True)])) if y_true else 0.0,
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
    }


def calibration(
    y_true: list[str], proba: np.ndarray, labels: tuple[str, ...], bins: int = 10
) -> dict[str, Any]:
    """Reliability of the predicted probabilities: expected calibration error of the top class (10 equal-width
    bins), multiclass Brier score, and the per-bin confidence and accuracy behind the ECE."""
    if not y_true:
        return {"ece": 0.0, "brier": 0.0, "bins": []}
    index = {lab: i for i, lab in enumerate(labels)}
    truth = np.array([index[y] for y in y_true])
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(truth)), truth] = 1.0
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap = abs(float(conf[mask].mean()) - float(correct[mask].mean()))
            ece += mask.mean() * gap
            table.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(mask.sum()),
                    "confidence": float(conf[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    return {"ece": float(ece), "brier": brier, "bins": table}


def evaluate_hand_heldout(data_dir: Path, models_dir: Path, triager: Triager) -> dict[str, Any]:
    """Scores on the hand-labelled held-out rows whose texts can be found in `data_dir`."""
    found = heldout_items(data_dir, models_dir)
    preds = triager.classify([item for _, _, item in found])
    labels = [lab for _, lab, _ in found]
    result = scores(labels, [p.intent for p in preds], INTENTS)
    result["rows"] = len(found)
    result["model_alone"] = scores(labels, [p.model_intent for p in preds], INTENTS)["macro_f1"]
    proba = np.array([[p.scores[c] for c in INTENTS] for p in preds]).reshape(-1, len(INTENTS))
    result["calibration"] = calibration(labels, proba, INTENTS)
    by_source = {}
    for dataset in sorted({k[0] for k, _, _ in found}):
        idx = [i for i, (k, _, _) in enumerate(found) if k[0] == dataset]
        sub = scores([labels[i] for i in idx], [preds[i].intent for i in idx], INTENTS)
        by_source[dataset] = {"rows": len(idx), "macro_f1": sub["macro_f1"]}
    result["by_source"] = by_source
    # Each file separately: the files were labelled at different times, some after the rules were written.
    by_file = {}
    for name, keys in hand_label_files(models_dir / "labels", "heldout").items():
        idx = [i for i, (k, _, _) in enumerate(found) if k in keys]
        if idx:
            sub = scores([labels[i] for i in idx], [preds[i].intent for i in idx], INTENTS)
            urgent = [i for i in idx if labels[i] == "urgent"]
            by_file[name] = {
                "rows": len(idx),
                "macro_f1": sub["macro_f1"],
                "urgent": len(urgent),
                "urgent_found": sum(preds[i].intent == "urgent" for i in urgent),
            }
    result["by_file"] = by_file
    files = hand_label_files(models_dir / "labels", "heldout")
    result["urgent_review"] = review_eval.report(
        {name: [i for i, (k, _, _) in enumerate(found) if k in keys] for name, keys in files.items()},
        labels,
        [p.intent == "urgent" or bool(p.review_reasons) for p in preds],
        [p.scores["urgent"] for p in preds],
    )
    heldout = load_hand_labels(models_dir / "labels", "heldout")
    topical = [i for i, (key, _, _) in enumerate(found) if heldout[key][1]]
    result["topic"] = scores(
        [heldout[found[i][0]][1] for i in topical], [preds[i].topic for i in topical], TOPICS
    )
    result["topic"]["rows"] = len(topical)
    with_ctx = [i for i, (_, _, item) in enumerate(found) if item.context]
    result["with_context_rows"] = len(with_ctx)
    return result


def rule_report(rows: list[Row], models_dir: Path, data_dir: Path) -> dict[str, Any]:
    """How often each urgency rule fires and how often it is right, on the training labels and on the
    hand-labelled held-out set; and whether the cue pre-check ever skips a rule that would fire."""
    from parley.classifier import rules

    def fired(texts: list[str], labels: list[str]) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for hits, label in zip(rules.urgency_many(texts), labels, strict=True):
            for hit in hits:
                entry = out.setdefault(hit.rule, {"fired": 0, "urgent": 0})
                entry["fired"] += 1
                entry["urgent"] += label == "urgent"
        for entry in out.values():
            entry["precision"] = entry["urgent"] / entry["fired"]
        return out

    texts = [r.text for r in rows]
    labels = [r.intent for r in rows]
    hand = [i for i, r in enumerate(rows) if r.dataset == "twcs"]
    heldout = heldout_items(data_dir, models_dir)
    # Both shortcuts, the batch prefilter and the cue pre-check, against running every rule on every text.
    checked = texts + [item.text for _, _, item in heldout]
    full = [rules.urgency_full(t) for t in checked]
    mismatches = sum(a != b for a, b in zip(rules.urgency_many(checked), full, strict=True))
    mismatches += sum(rules.urgency_by_cues(t) != b for t, b in zip(checked, full, strict=True))
    return {
        "training_rows": fired(texts, labels),
        "training_hand_labelled": fired([texts[i] for i in hand], [labels[i] for i in hand]),
        "hand_heldout": fired([item.text for _, _, item in heldout], [lab for _, lab, _ in heldout]),
        "precheck_mismatches": mismatches,
        "precheck_checked": len(texts) + len(heldout),
    }


def annotator_agreement(labels_dir: Path) -> dict[str, Any] | None:
    """How a second annotator's labels (`second_annotator.csv`, made without seeing the first) score against
    the held-out labels they re-label: the ceiling a model can be expected to reach on those labels."""
    path = labels_dir / "second_annotator.csv"
    if not path.exists():
        return None
    first = load_hand_labels(labels_dir, "heldout")
    second = read_label_file(path)
    keys = sorted(k for k in second if k in first)
    if not keys:
        return None
    y_first, y_second = [first[k][0] for k in keys], [second[k][0] for k in keys]
    result = scores(y_first, y_second, INTENTS)
    result["rows"] = len(keys)
    result["kappa"] = float(cohen_kappa_score(y_first, y_second))
    return result


def evaluate_bot(data_dir: Path, models_dir: Path, triager: Triager) -> dict[str, Any]:
    """The bot on every real message in `data_dir`: how many it answers (coverage), and how many of those
    answers resolve the message, judged by reading each message against its answer
    (models/labels/bot_judgements.csv; an answer without a judgement is reported as unjudged)."""
    real = real_items(data_dir)
    decided = triager.classify([item for _, item in real]) if real else []
    judged = load_bot_judgements(models_dir / "labels" / "bot_judgements.csv")
    heldout = load_hand_labels(models_dir / "labels", "heldout")
    answers, correct, unjudged = [], 0, []
    for (key, _), t in zip(real, decided, strict=True):
        if t.bot_answer.abstained:
            continue
        verdict = judged.get(key)
        answers.append(
            {
                "dataset": key[0],
                "id": key[1],
                "answer_id": t.bot_answer.answer_id,
                "confidence": t.bot_answer.confidence,
                "resolves": None if verdict is None or verdict[0] != t.bot_answer.answer_id else verdict[1],
            }
        )
        if answers[-1]["resolves"] is None:
            unjudged.append(list(key))
        elif answers[-1]["resolves"]:
            correct += 1
    n_judged = len(answers) - len(unjudged)
    predicted_questions = sum(t.intent == "question" for t in decided)
    heldout_questions = [k for k, (label, _) in heldout.items() if label == "question"]
    answered_keys = {(a["dataset"], a["id"]) for a in answers}
    return {
        "messages": len(real),
        "predicted_questions": predicted_questions,
        "answered": len(answers),
        "coverage_of_predicted_questions": len(answers) / predicted_questions if predicted_questions else 0.0,
        "judged": n_judged,
        "correct": correct,
        "precision": correct / n_judged if n_judged else None,
        "unjudged": unjudged,
        "heldout_questions": len(heldout_questions),
        "heldout_questions_answered": sum(k in answered_keys for k in heldout_questions),
        "threshold": triager.knowledge.threshold,
        "answers": answers,
    }


def evaluate(csv_path: Path, models_dir: Path) -> dict[str, Any]:
    """Per-class P/R/F1, macro-F1 and confusion matrix of the shipped models on a text,label CSV."""
    texts, labels = read_labelled_csv(csv_path)
    unknown = sorted(set(labels) - set(INTENTS))
    if unknown:
        raise ValueError(f"{csv_path}: unknown labels {unknown}")
    triager = Triager(models_dir)
    preds = triager.classify([Item(str(i), t) for i, t in enumerate(texts)])
    result = scores(labels, [p.intent for p in preds], INTENTS)
    result["rows"] = len(texts)
    result["model_version"] = triager.version
    return result
