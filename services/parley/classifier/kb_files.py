"""A brand's knowledge base as a file: CSV (`intent,question,answer`, optional `topic`, `channels`; one row
per example question) or the YAML the team ships. Every problem is reported with its line, all at once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from parley.classifier.knowledge import CHANNELS, Answer
from parley.classifier.labels import TOPICS

REQUIRED_COLUMNS = ("intent", "question", "answer")


class KnowledgeBaseError(ValueError):
    """A knowledge base file that cannot be loaded; `problems` lists each with its line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class LoadedKnowledge:
    answers: list[Answer]
    # The YAML's own threshold, if it names one.
    threshold: float | None
    # "classifier": a model over the brand's example questions (CSV files, or YAML with `retrieval:
    # classifier`), with the static sentence vectors when the service has them ("semantic");
    # "cosine": similarity to the nearest paraphrase (the shipped YAML).
    retrieval: str


def load(path: Path) -> LoadedKnowledge:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return LoadedKnowledge(read_csv(path), None, "classifier")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    answers = []
    for entry in doc["answers"]:
        channels = tuple(entry.get("channels") or CHANNELS)
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise KnowledgeBaseError(path, [f"answer {entry['id']}: unknown channels {sorted(unknown)}"])
        answers.append(
            Answer(
                entry["id"],
                entry["topic"],
                channels,
                entry["answer"].strip(),
                tuple(entry["questions"]),
                tuple(entry.get("unless") or ()),
            )
        )
    threshold = doc.get("threshold")
    return LoadedKnowledge(
        answers, None if threshold is None else float(threshold), doc.get("retrieval", "cosine")
    )


def read_csv(path: Path) -> list[Answer]:
    """The answers of a CSV knowledge base: rows sharing an intent give its example questions; the answer,
    topic and channels are given once per intent (on any of its rows) and must agree where repeated."""
    problems: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise KnowledgeBaseError(path, [f"line 1: missing columns {missing}"])
        reader.fieldnames = columns
        intents: dict[str, dict[str, Any]] = {}
        for row in reader:
            line = reader.line_num
            _read_row(row, line, intents, problems)
    for intent, entry in intents.items():
        if not entry["answer"]:
            problems.append(f"line {entry['line']}: intent {intent!r} has no answer on any row")
    if not intents and not problems:
        problems.append("no rows")
    if problems:
        raise KnowledgeBaseError(path, problems)
    return [
        Answer(intent, e["topic"] or "general", e["channels"] or CHANNELS, e["answer"], tuple(e["questions"]))
        for intent, e in intents.items()
    ]


def _read_row(
    row: dict[str, str], line: int, intents: dict[str, dict[str, Any]], problems: list[str]
) -> None:
    intent = (row.get("intent") or "").strip()
    question = (row.get("question") or "").strip()
    answer = (row.get("answer") or "").strip()
    topic = (row.get("topic") or "").strip()
    channels = tuple((row.get("channels") or "").replace("|", " ").replace(",", " ").split())
    if not intent:
        problems.append(f"line {line}: empty intent")
        return
    if not question:
        problems.append(f"line {line}: empty question for intent {intent!r}")
    if topic and topic not in TOPICS:
        problems.append(f"line {line}: unknown topic {topic!r} (one of {', '.join(TOPICS)})")
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        problems.append(f"line {line}: unknown channels {unknown} (of {', '.join(CHANNELS)})")
    entry = intents.setdefault(
        intent, {"answer": "", "topic": "", "channels": (), "questions": [], "line": line}
    )
    for key, value in (("answer", answer), ("topic", topic), ("channels", channels)):
        if value and entry[key] and entry[key] != value:
            problems.append(f"line {line}: intent {intent!r} has a different {key} than on an earlier row")
        elif value:
            entry[key] = value
    if question:
        entry["questions"].append(question)
