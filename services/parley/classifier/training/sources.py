"""The public data sets and the team's examples, read as labelled rows.

Each reader maps a source's own labels with its block of models/label_mapping.yaml. The data sets are never
copied into the project: they are read from the folder the user names (`parley train --data DIR`).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from parley.classifier.model import TOPICS, Item
from parley.classifier.text import normalize_many


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


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(newline="", encoding=encoding) as f:
        return list(csv.DictReader(f))


def airline_text(raw: str) -> str:
    """An airline tweet as its author wrote it: the published file replaced every "cancel" with "Cancelled
    Flight" and every "late" with "Late Flight", even inside words ("Cancelled Flightled", "Late Flightr").
    Undone here so the rules and the models see what a customer actually writes."""
    return raw.replace("Cancelled Flight", "cancel").replace("Late Flight", "late")


def read_airline(data_dir: Path, m: dict[str, Any]) -> Iterable[Row]:
    rows = read_csv(data_dir / "airline_sentiment" / "Tweets.csv")
    # Ids that occur twice with different sentiments cannot be trusted either way.
    labels_by_id: dict[str, set[str]] = {}
    for r in rows:
        labels_by_id.setdefault(r["tweet_id"], set()).add(r["airline_sentiment"])
    openers = re.compile(r"^(?:" + "|".join(m["question_openers"]) + r")\b")
    for r, normalized in zip(rows, normalize_many([r["text"] for r in rows]), strict=True):
        if (
            len(labels_by_id[r["tweet_id"]]) > 1
            or float(r["airline_sentiment_confidence"]) < m["min_confidence"]
        ):
            continue
        sentiment = r["airline_sentiment"]
        if sentiment == "neutral":
            body = normalized.replace("xhandle", "").strip()
            asks = "?" in r["text"] or bool(openers.match(body))
            intent = m["intent"]["neutral_question" if asks else "neutral_other"]
        else:
            intent = m["intent"][sentiment]
        yield Row("airline_sentiment", r["tweet_id"], airline_text(r["text"]), intent, m["topic"])


def read_banking(data_dir: Path, m: dict[str, Any]) -> Iterable[Row]:
    topic_of = {cat: topic for topic, cats in m["topics"].items() for cat in cats}
    urgent, complaint = set(m["urgent"]), set(m["complaint"])
    for split in ("train", "test"):
        for i, r in enumerate(read_csv(data_dir / "banking77" / f"{split}.csv")):
            cat = r["category"]
            intent = "urgent" if cat in urgent else "complaint" if cat in complaint else m["default_intent"]
            yield Row("banking77", f"{split}:{i}", r["text"], intent, topic_of.get(cat, m["default_topic"]))


def read_bitext(data_dir: Path, m: dict[str, Any]) -> Iterable[Row]:
    path = data_dir / "bitext" / "Bitext_Sample_Customer_Service_Training_Dataset.csv"
    review = {k: re.compile(v, re.IGNORECASE) for k, v in m["review"].items()}
    for i, r in enumerate(read_csv(path, encoding="utf-8-sig")):
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


def examples(path: Path, weight: float) -> Iterable[Row]:
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
            for r in read_csv(path):
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


def twcs_texts(data_dir: Path) -> dict[str, str]:
    out = {}
    for name in ("twcs_head5000.csv", "sample.csv"):
        path = data_dir / "twcs" / name
        if path.exists():
            for r in read_csv(path):
                if r["inbound"].strip().lower() == "true":
                    out[r["tweet_id"]] = r["text"]
    return out


def real_items(data_dir: Path) -> list[tuple[tuple[str, str], Item]]:
    """Every real customer message in `data_dir` (inbound twcs tweets with their context, airline tweets)."""
    out: list[tuple[tuple[str, str], Item]] = []
    twcs = twcs_texts(data_dir)
    context = twcs_context(data_dir) if twcs else {}
    brand = twcs_brand_replies(data_dir) if twcs else {}
    for tid, text in twcs.items():
        out.append((("twcs", tid), Item(f"twcs:{tid}", text, "", context.get(tid, ()), brand.get(tid, ""))))
    path = data_dir / "airline_sentiment" / "Tweets.csv"
    seen: set[str] = set()
    for r in read_csv(path) if path.exists() else []:
        if r["tweet_id"] not in seen:
            seen.add(r["tweet_id"])
            out.append(
                (
                    ("airline_sentiment", r["tweet_id"]),
                    Item(f"airline:{r['tweet_id']}", airline_text(r["text"])),
                )
            )
    return out
