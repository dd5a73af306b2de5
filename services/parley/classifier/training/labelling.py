"""Hand labels, the label mapping applied to every source, de-duplication and the stable test split."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from parley.classifier.model import INTENTS, TOPICS, Item
from parley.classifier.text import model_texts, normalize_many
from parley.classifier.training.sources import (
    Row,
    airline_text,
    examples,
    read_airline,
    read_banking,
    read_bitext,
    read_csv,
    twcs_brand_replies,
    twcs_context,
    twcs_texts,
)

Progress = Callable[[str], None]


# Short dataset names used in hand-label files.
DATASET_ALIASES = {"airline": "airline_sentiment"}


def read_label_file(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(dataset, id) → (intent, topic) from one hand-label file; topic may be empty.

    Rows are dataset,id,label[,topic] (the label column may also be named `intent`); rows whose label is not
    an intent are skipped.
    """
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for r in read_csv(path):
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


def hand_label_files(labels_dir: Path, suffix: str) -> dict[str, set[tuple[str, str]]]:
    """File name → the (dataset, id) keys it labels, for every labels/*_{suffix}.csv."""
    return {path.name: set(read_label_file(path)) for path in _label_files(labels_dir, suffix)}


def load_bot_judgements(path: Path) -> dict[tuple[str, str], tuple[str, bool]]:
    """(dataset, id) → (answer_id, resolves) from the team's judgements of the bot's answers."""
    if not path.exists():
        return {}
    out = {}
    for r in read_csv(path):
        dataset = DATASET_ALIASES.get(r["dataset"].strip(), r["dataset"].strip())
        out[(dataset, r["id"].strip())] = (r["answer_id"].strip(), r["resolves"].strip().lower() == "yes")
    return out


def urgent_review_keys(labels_dir: Path) -> set[tuple[str, str]]:
    """(dataset, id) of every message in the urgent-review labels (evaluation only)."""
    from parley.classifier.training.review_heldout import LABELS, read_labels

    path = labels_dir / LABELS
    return {("airline_sentiment", tid) for tid, _, _ in read_labels(path)} if path.exists() else set()


def read_labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    rows = read_csv(Path(path))
    if rows and not {"text", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: needs columns text,label")
    return [r["text"] for r in rows], [r["label"].strip() for r in rows]


def load_rows(data_dir: Path, models_dir: Path, progress: Progress) -> tuple[list[Row], dict[str, Any]]:
    """Every labelled row, after hand labels, de-duplicated by normalised text. Returns (rows, stats)."""
    mapping = yaml.safe_load((models_dir / "label_mapping.yaml").read_text())
    rows: list[Row] = []
    for name, reader in (
        ("airline_sentiment", read_airline),
        ("banking77", read_banking),
        ("bitext", read_bitext),
    ):
        if (data_dir / name).is_dir():
            got = list(reader(data_dir, mapping[name]))
            progress(f"{name}: {len(got)} rows mapped")
            rows.extend(got)
    rows.extend(examples(models_dir / mapping["examples"], mapping["examples_weight"]))

    labels_dir = models_dir / "labels"
    hand = load_hand_labels(labels_dir, "train")
    heldout = set(load_hand_labels(labels_dir, "heldout"))
    # Hand labels override mapped labels and hand-labelled twcs tweets join as new rows;
    # held-out rows never train, not even as a duplicate text. Nor do the urgent-review labels: the review
    # operating point is chosen and measured on them (as mapped airline complaints they would teach the
    # model that exactly those messages are not urgent).
    review = urgent_review_keys(labels_dir)
    heldout_or_review = heldout | review
    by_key = {(r.dataset, r.id): r for r in rows}
    twcs = twcs_texts(data_dir) if any(k[0] == "twcs" for k in [*hand, *heldout]) else {}
    context = twcs_context(data_dir) if twcs else {}
    brand = twcs_brand_replies(data_dir) if twcs else {}
    # Airline tweets the mapping skipped (low crowd agreement, conflicting ids) join when hand-labelled.
    airline = (
        {
            r["tweet_id"]: airline_text(r["text"])
            for r in read_csv(data_dir / "airline_sentiment" / "Tweets.csv")
        }
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
    rows = [r for k, r in by_key.items() if k not in heldout_or_review]
    heldout_texts = set(normalize_many([r.text for k, r in by_key.items() if k in heldout_or_review]))
    heldout_texts |= set(
        normalize_many([twcs[rid] for dataset, rid in heldout if dataset == "twcs" and rid in twcs])
    )

    # De-duplicate on normalised text before any split; a text seen with conflicting intents is dropped.
    groups: dict[str, list[Row]] = {}
    keys = model_texts([r.text for r in rows], [r.context for r in rows], [r.brand_reply for r in rows])
    for key, r in zip(keys, rows, strict=True):
        groups.setdefault(key, []).append(r)
    firsts = normalize_many([group[0].text for group in groups.values()])
    kept, conflicts = [], 0
    for (key, group), first in zip(groups.items(), firsts, strict=True):
        if not key or first in heldout_texts:
            continue
        if len({r.intent for r in group}) > 1:
            conflicts += 1
            continue
        kept.append(group[0])
    stats = {
        "rows_mapped": len(rows),
        "hand_labels_train": len(hand),
        "hand_labels_heldout": len(heldout),
        "urgent_review_labels": len(review),
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


def correction_rows(corrections: list[dict[str, Any]], out_dir: Path, weight: float) -> list[Row]:
    """Desk corrections as hand-labelled rows; their labels (without the texts, which are customers' messages
    and stay in the deployment's store) are written to labels/corrections_train.csv with their source."""
    path = out_dir / "labels" / "corrections_train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("dataset", "id", "intent", "topic", "source"))
        w.writerows((c["dataset"], c["id"], c["intent"], c["topic"], c["source"]) for c in corrections)
    return [
        Row("corrections", c["id"], c["text"], c["intent"], c["topic"] or "general", weight)
        for c in corrections
    ]


def heldout_items(data_dir: Path, models_dir: Path) -> list[tuple[tuple[str, str], str, Item]]:
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
                for r in read_airline(data_dir, {**mapping["airline_sentiment"], "min_confidence": 0})
            }
        )
    texts.update({("twcs", k): v for k, v in twcs_texts(data_dir).items()})
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
