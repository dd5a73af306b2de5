"""`parley classify`: every row of a CSV classified by the shipped models, written as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parley.classifier.model import Item, Triage, Triager
from parley.classifier.training.sources import read_csv


def classify_csv(in_path: Path, out_path: Path, models_dir: Path, batch: int = 1000) -> int:
    """Classify a CSV with a `text` column (`id`, `channel`, `brand_reply` optional) into JSON lines; returns
    the count."""
    rows = read_csv(Path(in_path))
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


def triage_dict(t: Triage) -> dict[str, Any]:
    return {
        "message_id": t.message_id,
        "intent": t.intent,
        "model_intent": t.model_intent,
        "scores": {k: round(v, 4) for k, v in t.scores.items()},
        "topic": t.topic,
        "topic_confidence": round(t.topic_confidence, 4),
        "language": t.language,
        "urgency_reasons": t.urgency_reasons,
        "urgent_review": t.urgent_review,
        "review_reasons": t.review_reasons,
        "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end} for e in t.entities],
        "top_features": [[n, round(w, 4)] for n, w in t.explanation.top_features],
        "bot_answer": None
        if t.bot_answer.abstained
        else {"id": t.bot_answer.answer_id, "confidence": t.bot_answer.confidence, "text": t.bot_answer.text},
    }
