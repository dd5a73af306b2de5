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
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import Pipeline

from parley.classifier.model import (
    INTENTS,
    TOPICS,
    Item,
    Triager,
    build_classifier,
    build_pipeline,
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
    "airline_sentiment": "positive→praise, negative→complaint, neutral→question if it asks else other",
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


def _csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


# Short dataset names used in hand-label files.
DATASET_ALIASES = {"airline": "airline_sentiment"}


def load_hand_labels(labels_dir: Path, suffix: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(dataset, id) → (intent, topic) from every labels/*_{suffix}.csv; topic may be empty.

    Rows are dataset,id,label[,topic] (the label column may also be named `intent`).
    """
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for path in sorted(labels_dir.glob(f"*_{suffix}.csv")) if labels_dir.is_dir() else []:
        for r in _csv(path):
            label = (r.get("label") or r.get("intent") or "").strip()
            if label in INTENTS:
                topic = (r.get("topic") or "").strip()
                dataset = r["dataset"].strip()
                key = (DATASET_ALIASES.get(dataset, dataset), r["id"].strip())
                out[key] = (label, topic if topic in TOPICS else "")
    return out


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
        yield Row("airline_sentiment", r["tweet_id"], r["text"], intent, m["topic"])


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
    twcs = _twcs_texts(data_dir) if any(k[0] == "twcs" for k in hand) else {}
    for (dataset, rid), (intent, topic) in hand.items():
        old = by_key.get((dataset, rid))
        text = old.text if old else twcs.get(rid) if dataset == "twcs" else None
        if text:
            topic = topic or (old.topic if old else "general")
            by_key[(dataset, rid)] = Row(dataset, rid, text, intent, topic, mapping["hand_label_weight"])
    rows = [r for k, r in by_key.items() if k not in heldout]
    heldout_texts = {normalize(r.text) for k, r in by_key.items() if k in heldout}

    # De-duplicate on normalised text before any split; a text seen with conflicting intents is dropped.
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(normalize(r.text), []).append(r)
    kept, conflicts = [], 0
    for key, group in groups.items():
        if not key or key in heldout_texts:
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

    The vectorizers' `stop_words_` (every pruned term, kept only for introspection) is dropped, vocabulary
    indices become plain ints (skops would store each NumPy integer as its own file), and coefficients are
    stored as float32, which leaves predictions unchanged to the fourth decimal and halves the file.
    """
    import zipfile

    import skops.io as sio

    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        if hasattr(vectorizer, "stop_words_"):
            del vectorizer.stop_words_
        vectorizer.vocabulary_ = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    clf = pipeline.named_steps["clf"]
    clf.coef_ = clf.coef_.astype(np.float32)
    clf.intercept_ = clf.intercept_.astype(np.float32)
    sio.dump(pipeline, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


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


def train(data_dir: Path, out_dir: Path, progress: Progress = lambda _: None) -> dict:
    """Build the intent and topic models from `data_dir` into `out_dir`; return the metrics written."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    mapping = yaml.safe_load((out_dir / "label_mapping.yaml").read_text())
    rows, stats = load_rows(data_dir, out_dir, progress)
    split = mapping["split"]
    test = [r for r in rows if in_test(r, split["test_fraction"], split["seed"])]
    train_rows = [r for r in rows if not in_test(r, split["test_fraction"], split["seed"])]
    progress(f"split: {len(train_rows)} train, {len(test)} test")
    texts = [normalize(r.text) for r in train_rows]

    progress("fitting the intent model")
    weights = np.array([r.weight for r in train_rows])
    intent = build_pipeline().fit(texts, [r.intent for r in train_rows], clf__sample_weight=weights)
    progress("fitting the topic model")
    # The topic classifier reuses the intent model's fitted features, so serving transforms each text once.
    features = intent.named_steps["features"]
    topic_clf = build_classifier(c=2.0).fit(
        features.transform(texts), [r.topic for r in train_rows], sample_weight=weights
    )
    topic = Pipeline([("features", features), ("clf", topic_clf)])

    version = "intent-" + datetime.now(UTC).strftime("%Y%m%d%H%M")
    _save(intent, out_dir / "intent.skops")
    _save(topic, out_dir / "topic.skops")
    # Written before evaluation so the Triager below loads exactly what ships; rewritten with figures after.
    (out_dir / "metrics.json").write_text(json.dumps({"model_version": version}))

    progress("evaluating on the held-out split")
    test_texts = [normalize(r.text) for r in test]
    y_intent = [r.intent for r in test]
    model_pred = list(intent.predict(test_texts))
    triager = Triager(out_dir)
    final = [t.intent for t in triager.classify([Item(f"t{i}", r.text) for i, r in enumerate(test)])]
    metrics: dict = {
        "model_version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": stats,
        "train_rows": len(train_rows),
        "test_rows": len(test),
        "train_label_counts": dict(Counter(r.intent for r in train_rows)),
        "intent_model": scores(y_intent, model_pred, INTENTS),
        "intent_with_rules": scores(y_intent, final, INTENTS),
        "topic": scores([r.topic for r in test], list(topic.predict(test_texts)), TOPICS),
        "intent_by_dataset": {},
    }
    for dataset in sorted({r.dataset for r in test}):
        idx = [i for i, r in enumerate(test) if r.dataset == dataset]
        sub = scores([y_intent[i] for i in idx], [final[i] for i in idx], INTENTS)
        metrics["intent_by_dataset"][dataset] = {"rows": len(idx), "macro_f1": sub["macro_f1"]}
    heldout = out_dir / "labels"
    if list(heldout.glob("*_heldout.csv")) if heldout.is_dir() else []:
        metrics["hand_heldout"] = evaluate_hand_heldout(data_dir, out_dir, triager)
    metrics["summary"] = {
        "macro_f1": metrics["intent_with_rules"]["macro_f1"],
        "model_macro_f1": metrics["intent_model"]["macro_f1"],
        "urgent_recall": metrics["intent_with_rules"]["per_class"]["urgent"]["recall"],
        "urgent_precision": metrics["intent_with_rules"]["per_class"]["urgent"]["precision"],
        "topic_macro_f1": metrics["topic"]["macro_f1"],
        "accuracy": metrics["intent_with_rules"]["accuracy"],
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _plot_confusion(
        metrics["intent_with_rules"]["confusion_matrix"],
        list(INTENTS),
        out_dir / "confusion_intent.png",
        "intent (model + urgency rules), held-out split",
    )
    (out_dir / "model_card.md").write_text(model_card(metrics, out_dir))
    progress(f"done: macro-F1 {metrics['summary']['macro_f1']:.3f}")
    return metrics


def evaluate_hand_heldout(data_dir: Path, models_dir: Path, triager: Triager) -> dict:
    """Scores on the hand-labelled held-out rows whose texts can be found in `data_dir`."""
    heldout = load_hand_labels(models_dir / "labels", "heldout")
    mapping = yaml.safe_load((models_dir / "label_mapping.yaml").read_text())
    texts = {
        (r.dataset, r.id): r.text
        for r in _airline(data_dir, {**mapping["airline_sentiment"], "min_confidence": 0})
    }
    texts.update({("twcs", k): v for k, v in _twcs_texts(data_dir).items()})
    if (data_dir / "banking77").is_dir():
        texts.update({(r.dataset, r.id): r.text for r in _banking(data_dir, mapping["banking77"])})
    found = [(k, v[0]) for k, v in heldout.items() if k in texts]
    preds = triager.classify([Item(f"h{i}", texts[k]) for i, (k, _) in enumerate(found)])
    result = scores([lab for _, lab in found], [p.intent for p in preds], INTENTS)
    result["rows"] = len(found)
    return result


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
    """Classify a CSV with a `text` column (`id`, `channel` optional) into JSON lines; returns the count."""
    rows = _csv(Path(in_path))
    triager = Triager(models_dir)
    n = 0
    with Path(out_path).open("w", encoding="utf-8") as out:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            items = [
                Item(r.get("id") or r.get("message_id") or str(start + i), r["text"], r.get("channel") or "")
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
        "urgency_reasons": t.urgency_reasons,
        "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end} for e in t.entities],
        "top_features": [[n, round(w, 4)] for n, w in t.explanation.top_features],
        "bot_answer": None
        if t.bot_answer.abstained
        else {"id": t.bot_answer.answer_id, "confidence": t.bot_answer.confidence, "text": t.bot_answer.text},
    }


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


def model_card(metrics: dict, out_dir: Path) -> str:
    d = metrics["data"]
    by_ds = "\n".join(
        f"| {k} | {v['rows']} | {v['macro_f1']:.3f} |" for k, v in metrics["intent_by_dataset"].items()
    )
    hand = metrics.get("hand_heldout")
    hand_text = (
        f"On {hand['rows']} hand-labelled held-out messages (models/labels/*_heldout.csv, real traffic):"
        f"\n\n{_table(hand)}\n\nConfusion matrix:\n\n{_matrix(hand)}\n"
        if hand
        else "No hand-labelled held-out set was present at training time.\n"
    )
    sources = "\n".join(f"| {name} | {LICENSES[name]} | {use} |" for name, use in SOURCE_USE.items())
    return f"""# Parley classifier — model card

Version `{metrics["model_version"]}`, trained {metrics["trained_at"]} by `parley train`.

## Models
- **intent** (`intent.skops`): TF-IDF word 1–2-grams + char 2–5-grams (char_wb) → multinomial logistic
  regression (class-balanced), five classes: praise, question, complaint, urgent, other. Text is normalised
  first (lower-case; URLs, emails, handles, numbers → placeholder tokens; the airline re-save artefacts
  "Cancelled Flight…" and "Late Flight" undone).
- **topic** (`topic.skops`): the intent model's fitted features → logistic regression over six topics:
  {", ".join(TOPICS)}.
- **urgency rules** (`services/parley/classifier/rules.py`) raise an intent to `urgent`, never lower it.
- **knowledge base** (`knowledge_base.yaml`, by the team): TF-IDF retrieval, abstains below a threshold.
- Artifacts are saved with skops and loaded with an explicit list of trusted types.

## Data and licenses
| source | license | use |
|---|---|---|
{sources}

The mapping is data: `models/label_mapping.yaml`. **Two sources are non-commercial (CC BY-NC-SA 4.0)**, so
the shipped models are for non-commercial use; retrain on your own data with
`parley train --data DIR`.

Rows mapped: {d["rows_mapped"]}; hand labels used for training: {d["hand_labels_train"]} (held-out hand labels
never trained on: {d["hand_labels_heldout"]}); after de-duplication on normalised text (before the split):
{d["rows"]} rows ({d["conflicting_texts_dropped"]} texts with conflicting labels dropped).
Split: a stable hash of (dataset, id) holds out 20%: {metrics["train_rows"]} train,
{metrics["test_rows"]} test.
Train label counts: {json.dumps(metrics["train_label_counts"])}.

## Held-out metrics (own split)
Intent, model plus urgency rules (what the service returns):

{_table(metrics["intent_with_rules"])}

Confusion matrix (also `confusion_intent.png`):

{_matrix(metrics["intent_with_rules"])}

Intent, model alone: macro-F1 {metrics["intent_model"]["macro_f1"]:.3f}.
Topic: macro-F1 {metrics["topic"]["macro_f1"]:.3f}, accuracy {metrics["topic"]["accuracy"]:.3f}.

Macro-F1 by source (classes present in that source):

| source | test rows | macro-F1 |
|---|---|---|
{by_ds}

{hand_text}
## Caveats
- Labels are mapped, not judged per message: airline "negative" includes urgent cases, "neutral" mixes
  questions and chatter, and banking77/bitext are not social-media text (bitext is generated). Held-out scores
  on mapped labels overstate quality on real traffic; the hand-labelled set is the better yardstick.
- `urgent` comes mostly from banking security categories and team examples; the rules carry the rest.
- The topic model has seen travel only from airline tweets, so any airline-flavoured text leans to `travel`.
"""
