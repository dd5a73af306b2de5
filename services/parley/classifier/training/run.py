"""`parley train`: builds every model from the data directory at training time.

`train` reads the public data sets (never copied into the project), maps their labels with
models/label_mapping.yaml, adds the team's examples and hand labels, de-duplicates before splitting, holds
out a test split by a stable hash, fits the intent and topic pipelines, and writes the artifacts, metrics
and model card.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from parley.classifier import manifest
from parley.classifier.model import INTENTS, TOPICS, Item, Triager
from parley.classifier.training.card import model_card
from parley.classifier.training.evaluation import (
    annotator_agreement,
    calibration,
    evaluate_bot,
    evaluate_hand_heldout,
    rule_report,
    scores,
)
from parley.classifier.training.fitting import fit_models, save_models
from parley.classifier.training.labelling import Progress, correction_rows, in_test, load_rows
from parley.classifier.training.plots import plot_confusion, require_extra


def train(
    data_dir: Path,
    out_dir: Path,
    progress: Progress = lambda _: None,
    corrections: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the intent and topic models from `data_dir` (and desk corrections, if given) into `out_dir`;
    return the metrics written."""
    require_extra()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    mapping = yaml.safe_load((out_dir / "label_mapping.yaml").read_text())
    previous_path = out_dir / "metrics.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
    rows, stats = load_rows(data_dir, out_dir, progress)
    if corrections:
        rows += correction_rows(corrections, out_dir, mapping["hand_label_weight"])
        stats["corrections"] = len(corrections)
        progress(f"{len(corrections)} desk corrections added as hand labels")
    split = mapping["split"]
    test = [r for r in rows if in_test(r, split["test_fraction"], split["seed"])]
    train_rows = [r for r in rows if not in_test(r, split["test_fraction"], split["seed"])]
    progress(f"split: {len(train_rows)} train, {len(test)} test")
    progress("fitting the intent and topic models on the training split")
    version = "intent-" + datetime.now(UTC).strftime("%Y%m%d%H%M")
    save_models(*fit_models(train_rows, mapping), out_dir, version)

    progress("evaluating on the held-out split")
    triager = Triager(out_dir)
    y_intent = [r.intent for r in test]
    decided = triager.classify(
        [Item(f"t{i}", r.text, "", r.context, r.brand_reply) for i, r in enumerate(test)]
    )
    model_pred = [t.model_intent for t in decided]
    final = [t.intent for t in decided]
    proba = np.array([[t.scores[c] for c in INTENTS] for t in decided]).reshape(-1, len(INTENTS))
    metrics: dict[str, Any] = {
        "model_version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": stats,
        "source_shares": mapping.get("source_shares", {}),
        "off_domain": mapping.get("off_domain", {}),
        "train_rows": len(train_rows),
        "test_rows": len(test),
        "train_label_counts": dict(Counter(r.intent for r in train_rows)),
        "intent_model": scores(y_intent, model_pred, INTENTS),
        "intent_with_rules": scores(y_intent, final, INTENTS),
        "calibration": calibration(y_intent, proba, INTENTS),
        "topic": scores([r.topic for r in test], [t.topic for t in decided], TOPICS),
        "intent_by_dataset": {},
    }
    for dataset in sorted({r.dataset for r in test}):
        idx = [i for i, r in enumerate(test) if r.dataset == dataset]
        sub = scores([y_intent[i] for i in idx], [final[i] for i in idx], INTENTS)
        metrics["intent_by_dataset"][dataset] = {"rows": len(idx), "macro_f1": sub["macro_f1"]}
    # What ships learns from every row, the test split included: the split has measured the method, and the
    # hand labels are too few to leave a fifth of them out. The hand-labelled held-out files below still never
    # train.
    progress("refitting on every row for the shipped models")
    save_models(*fit_models(rows, mapping), out_dir, version)
    triager = Triager(out_dir)
    progress("checking the urgency rules")
    metrics["rules"] = rule_report(rows, out_dir, data_dir)
    heldout = out_dir / "labels"
    if list(heldout.glob("*_heldout.csv")) if heldout.is_dir() else []:
        progress("evaluating on the hand-labelled held-out messages")
        metrics["hand_heldout"] = evaluate_hand_heldout(data_dir, out_dir, triager)
        # The urgent-review operating point that serving reads (unless settings name another).
        metrics["urgent_review"] = {"threshold": metrics["hand_heldout"]["urgent_review"]["threshold"]}
        metrics["bot"] = evaluate_bot(data_dir, out_dir, triager)
        agreement = annotator_agreement(out_dir / "labels")
        if agreement:
            metrics["annotator_agreement"] = agreement
    metrics["summary"] = {
        "macro_f1": metrics["intent_with_rules"]["macro_f1"],
        "model_macro_f1": metrics["intent_model"]["macro_f1"],
        "urgent_recall": metrics["intent_with_rules"]["per_class"]["urgent"]["recall"],
        "urgent_precision": metrics["intent_with_rules"]["per_class"]["urgent"]["precision"],
        "topic_macro_f1": metrics["topic"]["macro_f1"],
        "accuracy": metrics["intent_with_rules"]["accuracy"],
        "ece": metrics["calibration"]["ece"],
    }
    if "hand_heldout" in metrics:
        hand = metrics["hand_heldout"]
        metrics["summary"].update(
            {
                "heldout_macro_f1": hand["macro_f1"],
                "heldout_urgent_recall": hand["per_class"]["urgent"]["recall"],
                "heldout_ece": hand["calibration"]["ece"],
            }
        )
    if previous.get("summary"):
        # How the model changed since the one it replaces (on the same held-out files, when both had them).
        metrics["previous"] = {
            "model_version": previous.get("model_version", ""),
            "summary": previous["summary"],
            "urgent_review": previous.get("hand_heldout", {}).get("urgent_review", {}).get("unseen"),
        }
    speed_path = out_dir / "speed.json"
    if speed_path.exists():
        metrics["speed"] = json.loads(speed_path.read_text())
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    manifest.write(out_dir)
    plot_confusion(
        metrics["intent_with_rules"]["confusion_matrix"],
        list(INTENTS),
        out_dir / "confusion_intent.png",
        "intent (model + urgency rules), own test split",
    )
    if "hand_heldout" in metrics:
        plot_confusion(
            metrics["hand_heldout"]["confusion_matrix"],
            list(INTENTS),
            out_dir / "confusion_intent_heldout.png",
            "intent, hand-labelled real messages",
        )
    (out_dir / "model_card.md").write_text(model_card(metrics, out_dir))
    progress(f"done: macro-F1 {metrics['summary']['macro_f1']:.3f}")
    return metrics
