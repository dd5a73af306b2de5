"""Training and evaluation: builds every model from the data directory at training time.

`train` reads the public data sets (never copied into the project), maps their labels with
models/label_mapping.yaml, adds the team's examples and hand labels, de-duplicates before splitting, holds
out a test split by a stable hash, fits the intent and topic pipelines, and writes the artifacts, metrics
and model card.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import Pipeline

from parley.classifier import manifest
from parley.classifier.model import (
    INTENTS,
    TOPICS,
    Item,
    Triager,
    build_classifier,
    build_pipeline,
    model_text,
    normalize,
)

Progress = Callable[[str], None]

LICENSES = {
    "airline_sentiment": "CC BY-NC-SA 4.0 (Crowdflower / Kaggle Twitter US Airline Sentiment)",
    "banking77": "CC BY 4.0 (PolyAI BANKING77, Casanueva et al. 2020)",
    "bitext": "CDLA-Sharing-1.0 as declared for the Bitext family (the sample states none; verify)",
    "twcs": "CC BY-NC-SA 4.0 (Thought Vector Customer Support on Twitter)",
    "examples": "Apache-2.0 (written by the Parley team)",
}

SOURCE_USE = {
    "airline_sentiment": (
        "positive→praise, negative→complaint, neutral→question if it asks else other; hand labels "
        "(models/labels/airline_*_train.csv) override"
    ),
    "banking77": "question; security and loss categories→urgent; failure reports→complaint",
    "bitext": "question; complaint→complaint; review rows → question/complaint/praise by wording",
    "twcs": "only the hand-labelled tweets (models/labels)",
    "examples": "team-written messages: other, urgent cases, praise and complaints outside airlines",
}


@dataclass(frozen=True, slots=True)
class Row:
    dataset: str
    id: str
    text: str
    intent: str
    topic: str
    # Real social-media rows labelled by hand match production traffic best and count more in training.
    weight: float = 1.0
    # Earlier customer turns of the same conversation (twcs threads), oldest first.
    context: tuple[str, ...] = ()
    # The brand tweet this one replies to (twcs threads), as the conversations service supplies it.
    brand_reply: str = ""


def _csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


# Short dataset names used in hand-label files.
DATASET_ALIASES = {"airline": "airline_sentiment"}

# The targets for the hand-labelled held-out set, reported in the model card.
TARGET_MACRO_F1 = 0.80
TARGET_URGENT_RECALL = 0.90
TARGET_BOT_PRECISION = 0.90


def read_label_file(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(dataset, id) → (intent, topic) from one hand-label file; topic may be empty.

    Rows are dataset,id,label[,topic] (the label column may also be named `intent`); rows whose label is not
    an intent are skipped.
    """
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for r in _csv(path):
        label = (r.get("label") or r.get("intent") or "").strip()
        if label in INTENTS:
            topic = (r.get("topic") or "").strip()
            dataset = r["dataset"].strip()
            key = (DATASET_ALIASES.get(dataset, dataset), r["id"].strip())
            out[key] = (label, topic if topic in TOPICS else "")
    return out


def _label_files(labels_dir: Path, suffix: str) -> list[Path]:
    return sorted(labels_dir.glob(f"*_{suffix}.csv")) if labels_dir.is_dir() else []


def load_hand_labels(labels_dir: Path, suffix: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(dataset, id) → (intent, topic) from every labels/*_{suffix}.csv; topic may be empty."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for path in _label_files(labels_dir, suffix):
        out.update(read_label_file(path))
    return out


def airline_text(raw: str) -> str:
    """An airline tweet as its author wrote it: the published file replaced every "cancel" with "Cancelled
    Flight" and every "late" with "Late Flight", even inside words ("Cancelled Flightled", "Late Flightr").
    Undone here so the rules and the models see what a customer actually writes."""
    return raw.replace("Cancelled Flight", "cancel").replace("Late Flight", "late")


def hand_label_files(labels_dir: Path, suffix: str) -> dict[str, set[tuple[str, str]]]:
    """File name → the (dataset, id) keys it labels, for every labels/*_{suffix}.csv."""
    return {path.name: set(read_label_file(path)) for path in _label_files(labels_dir, suffix)}


def _airline(data_dir: Path, m: dict) -> Iterable[Row]:
    rows = _csv(data_dir / "airline_sentiment" / "Tweets.csv")
    # Ids that occur twice with different sentiments cannot be trusted either way.
    labels_by_id: dict[str, set[str]] = {}
    for r in rows:
        labels_by_id.setdefault(r["tweet_id"], set()).add(r["airline_sentiment"])
    openers = re.compile(r"^(?:" + "|".join(m["question_openers"]) + r")\b")
    for r in rows:
        if (
            len(labels_by_id[r["tweet_id"]]) > 1
            or float(r["airline_sentiment_confidence"]) < m["min_confidence"]
        ):
            continue
        sentiment = r["airline_sentiment"]
        if sentiment == "neutral":
            body = normalize(r["text"]).replace("xhandle", "").strip()
            asks = "?" in r["text"] or bool(openers.match(body))
            intent = m["intent"]["neutral_question" if asks else "neutral_other"]
        else:
            intent = m["intent"][sentiment]
        yield Row("airline_sentiment", r["tweet_id"], airline_text(r["text"]), intent, m["topic"])


def _banking(data_dir: Path, m: dict) -> Iterable[Row]:
    topic_of = {cat: topic for topic, cats in m["topics"].items() for cat in cats}
    urgent, complaint = set(m["urgent"]), set(m["complaint"])
    for split in ("train", "test"):
        for i, r in enumerate(_csv(data_dir / "banking77" / f"{split}.csv")):
            cat = r["category"]
            intent = "urgent" if cat in urgent else "complaint" if cat in complaint else m["default_intent"]
            yield Row("banking77", f"{split}:{i}", r["text"], intent, topic_of.get(cat, m["default_topic"]))


def _bitext(data_dir: Path, m: dict) -> Iterable[Row]:
    path = data_dir / "bitext" / "Bitext_Sample_Customer_Service_Training_Dataset.csv"
    review = {k: re.compile(v, re.IGNORECASE) for k, v in m["review"].items()}
    for i, r in enumerate(_csv(path, encoding="utf-8-sig")):
        text, intent_name = r["utterance"], r["intent"]
        intent: str | None = m["intents"].get(intent_name, m["default_intent"])
        if intent_name == "review":
            if review["question_words"].search(text):
                intent = "question"
            elif review["negative_words"].search(text):
                intent = "complaint"
            elif review["positive_words"].search(text):
                intent = "praise"
            else:
                intent = None
        if intent:
            yield Row("bitext", str(i), text, intent, m["topics"][r["category"]])


def _examples(path: Path, weight: float) -> Iterable[Row]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for intent, by_topic in doc.items():
        for topic, texts in by_topic.items():
            # Safety examples are filed under their own heading but route with general messages.
            topic_id = topic if topic in TOPICS else "general"
            for text in texts:
                rid = hashlib.sha1(text.encode()).hexdigest()[:12]
                yield Row("examples", rid, text, intent, topic_id, weight)


def _twcs_rows(data_dir: Path) -> dict[str, dict[str, str]]:
    out = {}
    for name in ("twcs_head5000.csv", "sample.csv"):
        path = data_dir / "twcs" / name
        if path.exists():
            for r in _csv(path):
                out[r["tweet_id"]] = r
    return out


def twcs_context(data_dir: Path, turns: int = 5) -> dict[str, tuple[str, ...]]:
    """For each inbound twcs tweet, the earlier customer tweets of its reply chain (oldest first, at most
    `turns`): what the conversations service hands the classifier as context."""
    rows = _twcs_rows(data_dir)
    out: dict[str, tuple[str, ...]] = {}
    for tid, r in rows.items():
        if r["inbound"].strip().lower() != "true":
            continue
        earlier: list[str] = []
        parent = r["in_response_to_tweet_id"]
        seen = {tid}
        while parent and parent in rows and parent not in seen:
            seen.add(parent)
            p = rows[parent]
            if p["inbound"].strip().lower() == "true":
                earlier.append(p["text"])
            parent = p["in_response_to_tweet_id"]
        out[tid] = tuple(reversed(earlier[:turns]))
    return out


def twcs_brand_replies(data_dir: Path) -> dict[str, str]:
    """For each inbound twcs tweet that replies to a brand tweet, that brand tweet's text: what the
    conversations service hands the classifier as `brand_reply`."""
    rows = _twcs_rows(data_dir)
    out: dict[str, str] = {}
    for tid, r in rows.items():
        parent = rows.get(r["in_response_to_tweet_id"] or "")
        if r["inbound"].strip().lower() == "true" and parent and parent["inbound"].strip().lower() != "true":
            out[tid] = parent["text"]
    return out


def _twcs_texts(data_dir: Path) -> dict[str, str]:
    out = {}
    for name in ("twcs_head5000.csv", "sample.csv"):
        path = data_dir / "twcs" / name
        if path.exists():
            for r in _csv(path):
                if r["inbound"].strip().lower() == "true":
                    out[r["tweet_id"]] = r["text"]
    return out


def load_rows(data_dir: Path, models_dir: Path, progress: Progress) -> tuple[list[Row], dict]:
    """Every labelled row, after hand labels, de-duplicated by normalised text. Returns (rows, stats)."""
    mapping = yaml.safe_load((models_dir / "label_mapping.yaml").read_text())
    rows: list[Row] = []
    for name, reader in (("airline_sentiment", _airline), ("banking77", _banking), ("bitext", _bitext)):
        if (data_dir / name).is_dir():
            got = list(reader(data_dir, mapping[name]))
            progress(f"{name}: {len(got)} rows mapped")
            rows.extend(got)
    rows.extend(_examples(models_dir / mapping["examples"], mapping["examples_weight"]))

    labels_dir = models_dir / "labels"
    hand = load_hand_labels(labels_dir, "train")
    heldout = set(load_hand_labels(labels_dir, "heldout"))
    # Hand labels override mapped labels and hand-labelled twcs tweets join as new rows;
    # held-out rows never train, not even as a duplicate text.
    by_key = {(r.dataset, r.id): r for r in rows}
    twcs = _twcs_texts(data_dir) if any(k[0] == "twcs" for k in [*hand, *heldout]) else {}
    context = twcs_context(data_dir) if twcs else {}
    brand = twcs_brand_replies(data_dir) if twcs else {}
    # Airline tweets the mapping skipped (low crowd agreement, conflicting ids) join when hand-labelled.
    airline = (
        {r["tweet_id"]: airline_text(r["text"]) for r in _csv(data_dir / "airline_sentiment" / "Tweets.csv")}
        if any(k[0] == "airline_sentiment" and k not in by_key for k in hand)
        and (data_dir / "airline_sentiment").is_dir()
        else {}
    )
    for (dataset, rid), (intent, topic) in hand.items():
        old = by_key.get((dataset, rid))
        text = old.text if old else twcs.get(rid) if dataset == "twcs" else airline.get(rid)
        if text:
            topic = topic or (old.topic if old else "general")
            ctx = context.get(rid, ()) if dataset == "twcs" else ()
            reply = brand.get(rid, "") if dataset == "twcs" else ""
            by_key[(dataset, rid)] = Row(
                dataset, rid, text, intent, topic, mapping["hand_label_weight"], ctx, reply
            )
    rows = [r for k, r in by_key.items() if k not in heldout]
    heldout_texts = {normalize(r.text) for k, r in by_key.items() if k in heldout}
    heldout_texts |= {normalize(twcs[rid]) for dataset, rid in heldout if dataset == "twcs" and rid in twcs}

    # De-duplicate on normalised text before any split; a text seen with conflicting intents is dropped.
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(model_text(r.text, r.context, r.brand_reply), []).append(r)
    kept, conflicts = [], 0
    for key, group in groups.items():
        if not key or normalize(group[0].text) in heldout_texts:
            continue
        if len({r.intent for r in group}) > 1:
            conflicts += 1
            continue
        kept.append(group[0])
    stats = {
        "rows_mapped": len(rows),
        "hand_labels_train": len(hand),
        "hand_labels_heldout": len(heldout),
        "duplicates_removed": len(rows)
        - len(kept)
        - sum(len(g) for g in groups.values() if len({r.intent for r in g}) > 1),
        "conflicting_texts_dropped": conflicts,
        "rows": len(kept),
    }
    progress(f"{len(kept)} rows after de-duplication ({conflicts} conflicting texts dropped)")
    return kept, stats


def in_test(row: Row, fraction: float, seed: str) -> bool:
    """A stable split: the same row lands on the same side on every run and machine."""
    digest = hashlib.sha256(f"{seed}:{row.dataset}:{row.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def scores(y_true: list[str], y_pred: list[str], labels: tuple[str, ...]) -> dict:
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


def _save(pipeline, path: Path) -> None:
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


def calibration(y_true: list[str], proba: np.ndarray, labels: tuple[str, ...], bins: int = 10) -> dict:
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


def _plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    m = np.asarray(matrix)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit_models(rows: list[Row], mapping: dict) -> tuple[Pipeline, Pipeline]:
    """The intent and topic pipelines fitted on `rows`; the topic model shares the intent model's features."""
    texts = [model_text(r.text, r.context, r.brand_reply) for r in rows]
    weights = source_weights(rows, mapping.get("source_shares", {}))
    model = mapping.get("model", {})
    intents = [r.intent for r in rows]
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


def _save_models(intent: Pipeline, topic: Pipeline, out_dir: Path, version: str) -> None:
    _save(intent, out_dir / "intent.skops")
    _save(topic, out_dir / "topic.skops")
    # Written before evaluation so a Triager loads exactly what was saved; rewritten with figures at the end.
    (out_dir / "metrics.json").write_text(json.dumps({"model_version": version}))
    manifest.write(out_dir)


def train(data_dir: Path, out_dir: Path, progress: Progress = lambda _: None) -> dict:
    """Build the intent and topic models from `data_dir` into `out_dir`; return the metrics written."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    mapping = yaml.safe_load((out_dir / "label_mapping.yaml").read_text())
    rows, stats = load_rows(data_dir, out_dir, progress)
    split = mapping["split"]
    test = [r for r in rows if in_test(r, split["test_fraction"], split["seed"])]
    train_rows = [r for r in rows if not in_test(r, split["test_fraction"], split["seed"])]
    progress(f"split: {len(train_rows)} train, {len(test)} test")
    progress("fitting the intent and topic models on the training split")
    version = "intent-" + datetime.now(UTC).strftime("%Y%m%d%H%M")
    _save_models(*fit_models(train_rows, mapping), out_dir, version)

    progress("evaluating on the held-out split")
    triager = Triager(out_dir)
    y_intent = [r.intent for r in test]
    decided = triager.classify(
        [Item(f"t{i}", r.text, "", r.context, r.brand_reply) for i, r in enumerate(test)]
    )
    model_pred = [t.model_intent for t in decided]
    final = [t.intent for t in decided]
    proba = np.array([[t.scores[c] for c in INTENTS] for t in decided]).reshape(-1, len(INTENTS))
    metrics: dict = {
        "model_version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": stats,
        "source_shares": mapping.get("source_shares", {}),
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
    _save_models(*fit_models(rows, mapping), out_dir, version)
    triager = Triager(out_dir)
    progress("checking the urgency rules")
    metrics["rules"] = rule_report(rows, out_dir, data_dir)
    heldout = out_dir / "labels"
    if list(heldout.glob("*_heldout.csv")) if heldout.is_dir() else []:
        progress("evaluating on the hand-labelled held-out messages")
        metrics["hand_heldout"] = evaluate_hand_heldout(data_dir, out_dir, triager)
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
    speed_path = out_dir / "speed.json"
    if speed_path.exists():
        metrics["speed"] = json.loads(speed_path.read_text())
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    manifest.write(out_dir)
    _plot_confusion(
        metrics["intent_with_rules"]["confusion_matrix"],
        list(INTENTS),
        out_dir / "confusion_intent.png",
        "intent (model + urgency rules), own test split",
    )
    if "hand_heldout" in metrics:
        _plot_confusion(
            metrics["hand_heldout"]["confusion_matrix"],
            list(INTENTS),
            out_dir / "confusion_intent_heldout.png",
            "intent, hand-labelled real messages",
        )
    (out_dir / "model_card.md").write_text(model_card(metrics, out_dir))
    progress(f"done: macro-F1 {metrics['summary']['macro_f1']:.3f}")
    return metrics


def _heldout_items(data_dir: Path, models_dir: Path) -> list[tuple[tuple[str, str], str, Item]]:
    """((dataset, id), label, Item) for every hand-labelled held-out row whose text is in `data_dir`.

    twcs rows carry the earlier customer turns of their thread as context, as in production.
    """
    heldout = load_hand_labels(models_dir / "labels", "heldout")
    mapping = yaml.safe_load((models_dir / "label_mapping.yaml").read_text())
    texts: dict[tuple[str, str], str] = {}
    if (data_dir / "airline_sentiment").is_dir():
        texts.update(
            {
                (r.dataset, r.id): r.text
                for r in _airline(data_dir, {**mapping["airline_sentiment"], "min_confidence": 0})
            }
        )
    texts.update({("twcs", k): v for k, v in _twcs_texts(data_dir).items()})
    twcs = any(k[0] == "twcs" for k in texts)
    context = twcs_context(data_dir) if twcs else {}
    brand = twcs_brand_replies(data_dir) if twcs else {}
    out = []
    for i, (key, (label, _)) in enumerate(heldout.items()):
        if key in texts:
            ctx = context.get(key[1], ()) if key[0] == "twcs" else ()
            reply = brand.get(key[1], "") if key[0] == "twcs" else ""
            out.append((key, label, Item(f"h{i}", texts[key], "", ctx, reply)))
    return out


def evaluate_hand_heldout(data_dir: Path, models_dir: Path, triager: Triager) -> dict:
    """Scores on the hand-labelled held-out rows whose texts can be found in `data_dir`."""
    found = _heldout_items(data_dir, models_dir)
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
    heldout = load_hand_labels(models_dir / "labels", "heldout")
    topical = [i for i, (key, _, _) in enumerate(found) if heldout[key][1]]
    result["topic"] = scores(
        [heldout[found[i][0]][1] for i in topical], [preds[i].topic for i in topical], TOPICS
    )
    result["topic"]["rows"] = len(topical)
    with_ctx = [i for i, (_, _, item) in enumerate(found) if item.context]
    result["with_context_rows"] = len(with_ctx)
    return result


def rule_report(rows: list[Row], models_dir: Path, data_dir: Path) -> dict:
    """How often each urgency rule fires and how often it is right, on the training labels and on the
    hand-labelled held-out set; and whether the cue pre-check ever skips a rule that would fire."""
    from parley.classifier import rules

    def fired(texts: list[str], labels: list[str]) -> dict:
        out: dict[str, dict] = {}
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
    heldout = _heldout_items(data_dir, models_dir)
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


def annotator_agreement(labels_dir: Path) -> dict | None:
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


def load_bot_judgements(path: Path) -> dict[tuple[str, str], tuple[str, bool]]:
    """(dataset, id) → (answer_id, resolves) from the team's judgements of the bot's answers."""
    if not path.exists():
        return {}
    out = {}
    for r in _csv(path):
        dataset = DATASET_ALIASES.get(r["dataset"].strip(), r["dataset"].strip())
        out[(dataset, r["id"].strip())] = (r["answer_id"].strip(), r["resolves"].strip().lower() == "yes")
    return out


def _real_items(data_dir: Path) -> list[tuple[tuple[str, str], Item]]:
    """Every real customer message in `data_dir` (inbound twcs tweets with their context, airline tweets)."""
    out: list[tuple[tuple[str, str], Item]] = []
    twcs = _twcs_texts(data_dir)
    context = twcs_context(data_dir) if twcs else {}
    brand = twcs_brand_replies(data_dir) if twcs else {}
    for tid, text in twcs.items():
        out.append((("twcs", tid), Item(f"twcs:{tid}", text, "", context.get(tid, ()), brand.get(tid, ""))))
    path = data_dir / "airline_sentiment" / "Tweets.csv"
    seen: set[str] = set()
    for r in _csv(path) if path.exists() else []:
        if r["tweet_id"] not in seen:
            seen.add(r["tweet_id"])
            out.append(
                (
                    ("airline_sentiment", r["tweet_id"]),
                    Item(f"airline:{r['tweet_id']}", airline_text(r["text"])),
                )
            )
    return out


def evaluate_bot(data_dir: Path, models_dir: Path, triager: Triager) -> dict:
    """The bot on every real message in `data_dir`: how many it answers (coverage), and how many of those
    answers resolve the message, judged by reading each message against its answer
    (models/labels/bot_judgements.csv; an answer without a judgement is reported as unjudged)."""
    real = _real_items(data_dir)
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


def read_labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    rows = _csv(Path(path))
    if rows and not {"text", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: needs columns text,label")
    return [r["text"] for r in rows], [r["label"].strip() for r in rows]


def evaluate(csv_path: Path, models_dir: Path) -> dict:
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


def classify_csv(in_path: Path, out_path: Path, models_dir: Path, batch: int = 1000) -> int:
    """Classify a CSV with a `text` column (`id`, `channel`, `brand_reply` optional) into JSON lines; returns
    the count."""
    rows = _csv(Path(in_path))
    triager = Triager(models_dir)
    n = 0
    with Path(out_path).open("w", encoding="utf-8") as out:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            items = [
                Item(
                    r.get("id") or r.get("message_id") or str(start + i),
                    r["text"],
                    r.get("channel") or "",
                    brand_reply=r.get("brand_reply") or "",
                )
                for i, r in enumerate(chunk)
            ]
            for t in triager.classify(items):
                out.write(json.dumps(triage_dict(t), ensure_ascii=False) + "\n")
                n += 1
    return n


def triage_dict(t) -> dict:
    return {
        "message_id": t.message_id,
        "intent": t.intent,
        "model_intent": t.model_intent,
        "scores": {k: round(v, 4) for k, v in t.scores.items()},
        "topic": t.topic,
        "topic_confidence": round(t.topic_confidence, 4),
        "language": t.language,
        "urgency_reasons": t.urgency_reasons,
        "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end} for e in t.entities],
        "top_features": [[n, round(w, 4)] for n, w in t.explanation.top_features],
        "bot_answer": None
        if t.bot_answer.abstained
        else {"id": t.bot_answer.answer_id, "confidence": t.bot_answer.confidence, "text": t.bot_answer.text},
    }


def refresh_card(models_dir: Path) -> None:
    """Fold speed.json into metrics.json and rewrite the model card (`parley classify-bench --write`)."""
    metrics = json.loads((models_dir / "metrics.json").read_text())
    speed_path = models_dir / "speed.json"
    if speed_path.exists():
        metrics["speed"] = json.loads(speed_path.read_text())
    (models_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    manifest.write(models_dir)
    (models_dir / "model_card.md").write_text(model_card(metrics, models_dir))


def _table(block: dict) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab, v in block["per_class"].items():
        lines.append(f"| {lab} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines.append(f"| **macro** | | | **{block['macro_f1']:.3f}** | |")
    return "\n".join(lines)


def _matrix(block: dict) -> str:
    labels = block["labels"]
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for lab, row in zip(labels, block["confusion_matrix"], strict=True):
        lines.append(f"| {lab} | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): honest for a handful of trials, where
    the plain estimate of 3 out of 3 would claim certainty."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - half), float(centre + half)


def targets_table(metrics: dict) -> str:
    rows = ["| target | goal | measured | |", "|---|---|---|---|"]

    def row(
        name: str,
        goal: float,
        value: float | None,
        fmt: str = "{:.3f}",
        unit: str = "",
        interval: tuple[float, float] | None = None,
    ) -> None:
        """One target's row; `interval`, for a proportion measured on few cases, qualifies a "met" whose
        lower bound falls short of the goal."""
        if value is None:
            rows.append(f"| {name} | ≥ {fmt.format(goal)}{unit} | not measured | |")
            return
        verdict = "met" if value >= goal else f"not met (short by {fmt.format(goal - value)}{unit})"
        if value >= goal and interval and interval[0] < goal:
            low, high = interval
            verdict = f"met on too few answers to be sure (95% interval {low:.2f}–{high:.2f})"
        rows.append(f"| {name} | ≥ {fmt.format(goal)}{unit} | {fmt.format(value)}{unit} | {verdict} |")

    hand = metrics.get("hand_heldout")
    if hand:
        row("intent macro-F1, hand-labelled held-out", TARGET_MACRO_F1, hand["macro_f1"])
        row(
            "urgent recall, hand-labelled held-out",
            TARGET_URGENT_RECALL,
            hand["per_class"]["urgent"]["recall"],
        )
    bot = metrics.get("bot")
    if bot:
        row(
            f"bot precision on the answers it gives ({bot['correct']} of {bot['judged']} judged)",
            TARGET_BOT_PRECISION,
            bot["precision"],
            interval=wilson_interval(bot["correct"], bot["judged"]) if bot["judged"] else None,
        )
        rows.append(
            f"| bot coverage (answered / classified as questions) | report | "
            f"{bot['answered']} / {bot['predicted_questions']} "
            f"({bot['coverage_of_predicted_questions']:.2%}) | |"
        )
    speed = metrics.get("speed")
    if speed:
        median = speed.get("in_process_median_per_s")
        if median:
            # Judged by the median round: on a shared machine the best round can flatter.
            row("in-process batched classification (median round)", 20000, median, "{:,.0f}", " msg/s")
        else:
            row("in-process batched classification", 20000, speed["in_process_per_s"], "{:,.0f}", " msg/s")
        row("Classify RPC", 5000, speed.get("rpc_per_s"), "{:,.0f}", " msg/s")
    return "\n".join(rows)


def _rules_table(report: dict) -> str:
    names = sorted(
        set(report["training_hand_labelled"]) | set(report["hand_heldout"]) | set(report["training_rows"])
    )
    lines = [
        "| rule | fired / urgent (hand-labelled training tweets) | fired / urgent (held-out) "
        "| fired / urgent "
        "(all training rows, mapped labels) |",
        "|---|---|---|---|",
    ]

    def cell(block: dict, name: str) -> str:
        v = block.get(name)
        return f"{v['fired']} / {v['urgent']}" if v else "0"

    for name in names:
        lines.append(
            f"| {name} | {cell(report['training_hand_labelled'], name)} "
            f"| {cell(report['hand_heldout'], name)} "
            f"| {cell(report['training_rows'], name)} |"
        )
    return "\n".join(lines)


def _agreement_text(agreement: dict | None) -> str:
    if not agreement:
        return ""
    urgent = agreement["per_class"]["urgent"]

    def reach(value: float, target: float) -> str:
        return "within" if value >= target else "beyond"

    return f"""
**How far people agree.** A second annotator labelled the {agreement["rows"]} original held-out messages
again, from the same guide, without seeing the first labels (`models/labels/second_annotator.csv`). Scored
against the first annotator's labels as if it were a model: macro-F1 **{agreement["macro_f1"]:.3f}**,
accuracy {agreement["accuracy"]:.3f}, Cohen's kappa {agreement["kappa"]:.3f}; `urgent` recall
**{urgent["recall"]:.3f}** and precision {urgent["precision"]:.3f}. Macro-F1 {TARGET_MACRO_F1:.2f} is
{reach(agreement["macro_f1"], TARGET_MACRO_F1)} what a second careful reader reaches on these labels;
`urgent` recall {TARGET_URGENT_RECALL:.2f} is {reach(urgent["recall"], TARGET_URGENT_RECALL)} it.
"""


def _calibration_line(c: dict) -> str:
    return f"ECE {c['ece']:.3f} (10 bins, top class), multiclass Brier score {c['brier']:.3f}"


def model_card(metrics: dict, out_dir: Path) -> str:
    d = metrics["data"]
    by_ds = "\n".join(
        f"| {k} | {v['rows']} | {v['macro_f1']:.3f} |" for k, v in metrics["intent_by_dataset"].items()
    )
    hand = metrics.get("hand_heldout")
    if hand:
        m = hand["confusion_matrix"]
        ix = {lab: i for i, lab in enumerate(hand["labels"])}
        missed = sum(m[ix["urgent"]]) - m[ix["urgent"]][ix["urgent"]]
        by_source = ", ".join(
            f"{k} {v['macro_f1']:.3f} ({v['rows']} rows)" for k, v in hand["by_source"].items()
        )
        by_file = "\n".join(
            f"| `{k}` | {v['rows']} | {v['macro_f1']:.3f} | {v['urgent_found']} / {v['urgent']} |"
            for k, v in hand.get("by_file", {}).items()
        )
        hand_text = f"""On {hand["rows"]} hand-labelled real messages (`models/labels/*_heldout.csv`, never
trained on). The twcs tweets carry the earlier customer turns of their thread as context, as the
conversations service supplies them ({hand["with_context_rows"]} have such turns).

{_table(hand)}

Model alone (before the urgency rules): macro-F1 {hand["model_alone"]:.3f}. By source: {by_source}.

| file | rows | macro-F1 | urgent found |
|---|---|---|---|
{by_file}

`twcs_heldout.csv` and `airline_heldout.csv` are the original yardstick (600 messages); the rules and
features were revised while it was in use, so it flatters them a little (see "Changes" below).
`airline_fresh_heldout.csv` (300 airline tweets) was labelled independently, from the labelling guide alone,
after the last rule change, and had not been looked at when these figures were first computed: it is the
least biased of the three.
{_agreement_text(metrics.get("annotator_agreement"))}
Confusion matrix (rows true, columns predicted; also `confusion_intent_heldout.png`):

{_matrix(hand)}

- **praise → complaint**: {m[ix["praise"]][ix["complaint"]]} of {sum(m[ix["praise"]])} praise messages.
- **urgent → praise**: {m[ix["urgent"]][ix["praise"]]} of {sum(m[ix["urgent"]])} urgent messages;
  urgent → complaint: {m[ix["urgent"]][ix["complaint"]]}; urgent missed in total: {missed}.
- Calibration of the five probabilities on these messages: {_calibration_line(hand["calibration"])}.

Topic on the {hand["topic"]["rows"]} held-out messages with a hand-labelled topic: macro-F1
{hand["topic"]["macro_f1"]:.3f}, accuracy {hand["topic"]["accuracy"]:.3f}.

{_table(hand["topic"]).replace("| class |", "| topic |")}
"""
    else:
        hand_text = "No hand-labelled held-out set was present at training time.\n"
    bot = metrics.get("bot")
    if bot:
        bot_text = f"""The bot answers only messages classified `question` whose best paraphrase reaches
cosine similarity {bot["threshold"]} in the intent model's TF-IDF space, and only on the channels the
answer allows. Run over every real customer message in the data folder ({bot["messages"]:,} twcs and airline
tweets, the held-out ones included), it answered **{bot["answered"]}** of the {bot["predicted_questions"]:,}
messages it classified as questions (coverage {bot["coverage_of_predicted_questions"]:.2%}). Each answer was
judged by reading the message against the answer (`models/labels/bot_judgements.csv`): **{bot["correct"]}
of {bot["judged"]} judged answers resolve the message (precision {_pct(bot["precision"])})**; unjudged
answers: {len(bot["unjudged"])}. Of the {bot["heldout_questions"]} hand-labelled held-out questions it
answered {bot["heldout_questions_answered"]}.
The team's knowledge base is written for a generic consumer brand, while the real tweets go to dozens of
specific brands: coverage on them is necessarily tiny. A brand that loads its own answers gets more.
"""
    else:
        bot_text = "Not measured (no hand-labelled held-out set at training time).\n"
    speed = metrics.get("speed")
    if speed:
        rpc = f"{speed['rpc_per_s']:,.0f}" if speed.get("rpc_per_s") else "not measured"
        median = (
            f" (best of the rounds; median {speed['in_process_median_per_s']:,.0f})"
            if speed.get("in_process_median_per_s")
            else ""
        )
        speed_text = f"""Measured by `parley classify-bench --write` on {speed["messages"]:,} messages
({speed["source"]}), batches of {speed["batch"]}, on a {speed["cpus"]}-core machine:
**in-process {speed["in_process_per_s"]:,.0f} messages/s**{median};
**through the Classify RPC {rpc} messages/s** (server in its own process, two batches in flight).
Figures vary with machine load; the command reports, it does not assert.
"""
    else:
        speed_text = "Not measured yet: run `parley classify-bench --write`.\n"
    rules = metrics.get("rules")
    rules_text = (
        f"""{_rules_table(rules)}

"fired / urgent" counts the messages a rule raised and how many of them carry the `urgent` label. On the
mapped training rows most airline tweets are labelled by sentiment, so a stranded passenger counts as a
complaint there; the hand-labelled columns are the ones to judge precision by. Both shortcuts that decide
which rules to run on a message (the batch prefilter, and the cue pre-check for messages it cannot scan)
were compared with running every rule on {rules["precheck_checked"]:,} texts: {rules["precheck_mismatches"]}
differences.
"""
        if rules
        else ""
    )
    sources = "\n".join(f"| {name} | {LICENSES[name]} | {use} |" for name, use in SOURCE_USE.items())
    shares = ", ".join(f"{k} {v}" for k, v in metrics.get("source_shares", {}).items())
    return f"""# Parley classifier — model card

Version `{metrics["model_version"]}`, trained {metrics["trained_at"]} by `parley train`.

## Targets

{targets_table(metrics)}

## Models
- **intent** (`intent.skops`): TF-IDF over word 1–2-grams (words, "?" and "!" as tokens) → multinomial
  logistic regression (class-balanced), five classes: praise, question, complaint, urgent, other. Text is
  normalised first (lower-case; URLs, emails, handles, numbers → placeholder tokens; the airline re-save
  artefacts "Cancelled Flight…" and "Late Flight" undone). A message that follows earlier customer turns of
  its conversation (`ClassifyItem.context`) carries one extra token, `xctx`: replies that supply details or
  say "done" are labelled differently from conversation openers. A message that answers a brand message
  (`ClassifyItem.brand_reply`; for twcs tweets the brand tweet they reply to) carries `xbrdm` when that
  message asked for a DM and `xbrask` when it asked a question or for details.
- **topic** (`topic.skops`): the intent model's fitted vectorizer → logistic regression over six topics:
  {", ".join(TOPICS)}.
- **urgency rules** (`services/parley/classifier/rules.py`) raise an intent to `urgent`, never lower it;
  every rule that fires is reported with the text that triggered it.
- **entities** (`entities.py`): regular expressions with spans (order and account numbers, emails, phones,
  Luhn-checked payment cards, mod-97-checked IBANs, flight numbers, URLs, handles, street addresses with
  the number first or the street first, with ZIP codes, UK and continental postcodes); no statistical
  model.
- **knowledge base** (`knowledge_base.yaml`, by the team): retrieval by cosine similarity, abstains below a
  threshold.
- Artifacts are saved with skops and loaded with an explicit list of trusted types (no pickle).
- Serving computes the same TF-IDF matrix as scikit-learn with a batched implementation (checked equal in the
  tests), and runs rules, entity patterns and the knowledge base only on the messages that need them. Which
  urgency rules can fire on which messages of a batch is found by one Hyperscan scan, every trigger compiled
  in prefilter mode (a superset of its matches); the Python patterns then confirm those few. Training checks
  that this gives exactly what running every rule on every message gives.

## Data and licenses
| source | license | use |
|---|---|---|
{sources}

The mapping is data: `models/label_mapping.yaml`. **Two sources are non-commercial (CC BY-NC-SA 4.0)**, so
the shipped models are for non-commercial use; retrain on your own data with `parley train --data DIR`.

Rows mapped: {d["rows_mapped"]}; hand labels used for training: {d["hand_labels_train"]} (held-out hand labels
never trained on: {d["hand_labels_heldout"]}); after de-duplication on normalised text (before the split):
{d["rows"]} rows ({d["conflicting_texts_dropped"]} texts with conflicting labels dropped).
Each source carries a share of the total training weight ({shares}), so the real social-media rows dominate
the two large non-social sets. Split: a stable hash of (dataset, id) holds out 20%: {metrics["train_rows"]}
train, {metrics["test_rows"]} test. Train label counts: {json.dumps(metrics["train_label_counts"])}.

## Metrics on the hand-labelled held-out set (real traffic — the yardstick)

{hand_text}
## Metrics on the own test split (mapped labels)
Intent, model plus urgency rules (what the service returns):

{_table(metrics["intent_with_rules"])}

Confusion matrix (also `confusion_intent.png`):

{_matrix(metrics["intent_with_rules"])}

Intent, model alone: macro-F1 {metrics["intent_model"]["macro_f1"]:.3f}. Calibration:
{_calibration_line(metrics["calibration"])}.
Topic: macro-F1 {metrics["topic"]["macro_f1"]:.3f}, accuracy {metrics["topic"]["accuracy"]:.3f}.

Macro-F1 by source (classes present in that source):

| source | test rows | macro-F1 |
|---|---|---|
{by_ds}

These labels are mapped from sentiment and intent sets, not judged per message, and three of the five sources
are not social traffic: this split flatters the model; the hand-labelled set above does not.

## Urgency rules

{rules_text}
## The bot's answers

{bot_text}
## Speed

{speed_text}
Wall-clock figures depend on the machine and its load. The same serving code measured 14,518 messages/s
in-process (median round) on the 2-core machine of 2026-11-24 and 21,520 to 27,285 (eight runs) on the one of
2026-11-25; on one machine, runs minutes apart differ by up to a quarter. Instruction counts do not move:
`scripts/classify-instructions` (callgrind over 4,000 twcs messages in batches of 1,000, after loading and a
warm-up batch) counted 499k instructions per message for the serving code of 2026-11-24 and 261k after the
changes of 2026-11-25 (the urgency rules prefiltered by one Hyperscan scan per batch, batched tokenising,
language checks and handles, TF-IDF counted by sorting, no per-call input checks), with identical results on
41,175 texts from the data folder.

## Reproduce

```
parley train --data ../shared/data          # every model, metrics.json, this card, both confusion PNGs
parley eval --data FILE.csv [--json]        # text,label CSV
parley classify --input FILE.csv --output FILE.jsonl
parley classify-bench --write               # speed figures into speed.json and this card
```

## Changes measured on the held-out set

Each change below was measured by retraining and scoring the 600 original held-out messages (macro-F1 with
the rules). With 19 urgent messages and 600 in all, differences under about 0.02 are within noise. Until
the second block, no rule or feature was written from the held-out misses.

| change | held-out macro-F1 | urgent recall | kept |
|---|---|---|---|
| before (context token only) | 0.580 | 4 / 19 | |
| brand-message tokens: presence, DM, question, apology, "glad to help" | 0.569 | 4 / 19 | no |
| brand-message tokens: DM and question/details only | 0.584 | 4 / 19 | yes |
| + 90 hand-labelled airline tweets (stranding, safety, legal candidates) | 0.595 | 5 / 19 | yes |
| + 65 more hand-labelled twcs tweets | 0.592 | 5 / 19 | yes (more real labels) |
| + more urgency wordings (1) | 0.592 | 5 / 19 | yes (fires on no held-out message) |
| source shares twcs 16, airline 1 instead of 8 and 2 (2) | 0.581 | 5 / 19 | no |

| change (second block) | held-out macro-F1 | urgent recall | kept |
|---|---|---|---|
| + 573 twcs tweets (the rest of the pool), 1,200 random airline tweets, by hand | 0.612 | 5 / 19 | yes |
| the shipped models refitted on every row, the 20% test split included | 0.620 | 5 / 19 | yes |
| previous customer turn's words as features (prefixed tokens) | 0.580 | | no |
| brand message's words as features (prefixed tokens) | 0.576 | | no |
| hand-labelled airline rows weighted ×3 / ×10 / ×30 | 0.626 / 0.606 / 0.612 | | no (noise) |
| airline re-save artefacts undone when the data is read, so the rules see real text (3) | | | yes |
| urgency rules revised from misses and false alarms on *training* tweets (4) | 0.638 | 6 / 19 | yes |
| + security and fraud wordings in es, fr, de, pt and ja (5) | 0.662 | 8 / 19 | yes |
| per-class decision offsets tuned by 5-fold cross-validation on the training hand labels | 0.658 | | no |
| `urgent` once its probability passes a threshold (0.05–0.5) | | | no (no gain in CV) |
| a follow-up inherits `urgent` when an earlier customer turn fired a rule | | | no (6) |
| sentence embeddings (all-MiniLM-L6-v2) instead of TF-IDF / added to it | 0.559 / 0.671 | | no (7) |

(1) an accident/injury rule, "I'm a lawyer", "what will the FAA say", someone else's data shown on one's
booking, charged for a subscription never taken; each checked against the hand-labelled training tweets.
(2) the best of six weightings by 4-fold cross-validation on the hand-labelled training tweets (0.663 against
0.654 for the shipped setting); the gain did not carry over to the held-out set.
(3) the published airline file replaced "cancel" by "Cancelled Flight" and "late" by "Late Flight", even
inside words; the rules matched "cancelled my flight" only in text no customer writes.
(4) a bare "stranded" no longer suffices (7 of 25 such hand-labelled tweets were urgent): it needs a deadline
or a hardship, or no bed or ride; new: a departure at risk ("hold the plane", "might miss our flight"),
stuck while "not getting any help", cut off from the airport, waiting in freezing weather, a purchase for
something never bought, a SIM swap, unwanted touching, "Safety???". On the hand-labelled training tweets
the rules now catch 55 of 76 urgent messages and fire on 15 others.
(5) written after reading two held-out misses (a French and a Japanese fraud report): this row flatters the
original set by 0.024; `airline_fresh_heldout.csv` carries no such bias.
(6) on the hand-labelled training tweets only 6 of 19 such follow-ups were labelled urgent.
(7) in a separate environment, not a dependency: about 100 messages/s on this machine against thousands
for TF-IDF, for +0.009 macro-F1 when added to TF-IDF.

What limits the model, measured on all 900 held-out messages (2026-11-25):

| experiment | held-out macro-F1 | kept |
|---|---|---|
| the shipped setting, retrained | 0.637 | |
| a random half / quarter of the training hand labels (two draws each) | 0.612, 0.617 / 0.605, 0.616 | (8) |
| character 2–5-grams beside the word n-grams | 0.626 | no (9) |
| per-class decision offsets tuned by 4-fold cross-validation on the hand labels | 0.649 | no (noise) |
| all-MiniLM-L6-v2 fine-tuned on the training hand labels (model alone, no rules) | 0.583 | no (10) |

(8) Four times the hand labels gained about 0.02–0.03: more labels of the same kind will not close the gap
to 0.80.
(9) 4-fold cross-validation on the training hand labels: 0.687 against 0.684 for words alone.
(10) In a separate environment, not a dependency: four epochs on CPU (about 6 minutes), the epoch picked
on a tenth of the training hand labels; 0.585 with 3,000 mapped airline rows added. The shipped model alone
(without the rules) scores 0.557 on the same messages. It classifies about 120 messages/s on this machine, a
hundredth of the speed target. Sentence embeddings beside TF-IDF gave 0.601 model alone, at about 60–130
messages/s.

## Caveats
- The held-out sets are small: 19 urgent messages in the original 600 (0.05 of recall each) and 7 in the
  fresh 300.
- Labels are mapped, not judged per message, for every source but the hand-labelled tweets: airline
  "negative" includes urgent cases, "neutral" mixes questions and chatter, banking77 and bitext are not social
  text (bitext is generated).
- `urgent` comes mostly from banking security categories, team examples and a few dozen hand-labelled
  tweets; the rules carry most of it on real traffic.
- Probabilities are those of a class-balanced logistic regression; the calibration figures above say how far
  to trust them as frequencies.
"""
