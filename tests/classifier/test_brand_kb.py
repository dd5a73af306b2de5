import json
import os
from pathlib import Path

import numpy as np
import pytest

from parley.classifier import bot_eval, kb_files
from parley.classifier.knowledge import KnowledgeBase
from parley.classifier.model import Item, Triager
from parley.config import REPO_ROOT

# Written for these tests: a small shop's answers, several example questions each.
KB_ROWS = [
    ("intent", "question", "answer", "topic", "channels"),
    ("store_hours", "what time do you open", "We open 9am to 6pm, Monday to Saturday.", "general", ""),
    ("store_hours", "when are you open on saturday", "", "", ""),
    ("store_hours", "what are your opening hours", "", "", ""),
    ("store_hours", "are you open today", "", "", ""),
    (
        "returns",
        "how do I return an item",
        "Returns are free within 30 days at any store.",
        "orders_delivery",
        "",
    ),
    ("returns", "can I send back shoes that don't fit", "", "", ""),
    ("returns", "what is your return policy", "", "", ""),
    ("returns", "how long do I have to return something", "", "", ""),
    (
        "gift_cards",
        "do you sell gift cards",
        "Gift cards are sold in store and online.",
        "billing",
        "x|whatsapp",
    ),
    ("gift_cards", "can I buy a gift voucher online", "", "", ""),
    ("gift_cards", "where can I get a gift card", "", "", ""),
    ("gift_cards", "are gift cards available", "", "", ""),
]


def write_csv(path: Path, rows) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def test_csv_knowledge_base_groups_questions_by_intent(tmp_path: Path) -> None:
    answers = kb_files.read_csv(write_csv(tmp_path / "kb.csv", KB_ROWS))
    assert [a.id for a in answers] == ["store_hours", "returns", "gift_cards"]
    hours = answers[0]
    assert hours.text.startswith("We open") and len(hours.questions) == 4 and hours.topic == "general"
    assert answers[2].channels == ("x", "whatsapp")
    assert answers[1].channels == ("x", "facebook", "messenger", "instagram", "whatsapp")


def test_csv_errors_name_every_line(tmp_path: Path) -> None:
    rows = [
        *KB_ROWS,
        ("returns", "", "", "", ""),  # line 14: no question
        ("returns", "refund?", "A different answer.", "", ""),  # line 15: conflicting answer
        ("promo", "any deals", "", "shopping", "telegram"),  # line 16: topic, channel; no answer anywhere
    ]
    with pytest.raises(kb_files.KnowledgeBaseError) as e:
        kb_files.read_csv(write_csv(tmp_path / "kb.csv", rows))
    problems = e.value.problems
    assert any(p.startswith("line 14: empty question") for p in problems)
    assert any(p.startswith("line 15:") and "different answer" in p for p in problems)
    assert any(p.startswith("line 16: unknown topic 'shopping'") for p in problems)
    assert any(p.startswith("line 16: unknown channels ['telegram']") for p in problems)
    assert any("intent 'promo' has no answer" in p for p in problems)
    with pytest.raises(kb_files.KnowledgeBaseError, match="line 1: missing columns"):
        kb_files.read_csv(write_csv(tmp_path / "bad.csv", [("intent", "text"), ("a", "b")]))


def test_classifier_head_answers_and_abstains(tmp_path: Path) -> None:
    kb = KnowledgeBase.from_file(write_csv(tmp_path / "kb.csv", KB_ROWS))
    assert kb.retrieval == "classifier"
    answers = kb.answer_many(
        ["what time do you open on saturday?", "is my flight to Rome delayed?", "what time do you open?"],
        ["question", "question", "complaint"],
        ["x", "x", "x"],
    )
    assert not answers[0].abstained and answers[0].answer_id == "store_hours"
    assert answers[1].abstained and answers[1].reason == "low_confidence"
    assert answers[2].abstained and answers[2].reason == "not_a_question"  # complaints never reach the bot


def test_bot_eval_writes_one_line_per_row_and_scores(tmp_path: Path) -> None:
    kb = write_csv(tmp_path / "kb.csv", KB_ROWS)
    test = write_csv(
        tmp_path / "test.csv",
        [
            ("text", "label"),
            ("when do you open?", "store_hours"),
            ("can I return these shoes", "returns"),
            ("what's the weather on Mars", "oos"),
        ],
    )
    out = tmp_path / "pred.jsonl"
    summary = bot_eval.run(kb, test, out, threshold=0.0)  # answer everything: the oos row counts as wrong
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"answered", "intent", "confidence"}
    assert [x["intent"] for x in lines[:2]] == ["store_hours", "returns"]
    assert summary["precision"] == pytest.approx(2 / 3) and summary["oos_answered"] == 1.0
    assert summary["coverage"] == 1.0 and summary["lookups_per_second"] > 0
    never = bot_eval.run(kb, test, out, threshold=1.01)
    assert never["answered"] == 0 and never["precision"] is None and never["coverage"] == 0.0
    assert all(
        not json.loads(x)["answered"] and json.loads(x)["intent"] == "" for x in out.read_text().splitlines()
    )


def test_bot_eval_rejects_unknown_labels_by_line(tmp_path: Path) -> None:
    kb = write_csv(tmp_path / "kb.csv", KB_ROWS)
    test = write_csv(tmp_path / "t.csv", [("text", "label"), ("hi", "returns"), ("x", "refunds")])
    with pytest.raises(kb_files.KnowledgeBaseError, match="line 3: label 'refunds'"):
        bot_eval.run(kb, test, tmp_path / "p.jsonl")


def test_bot_eval_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from parley.cli import app

    kb = write_csv(tmp_path / "kb.csv", KB_ROWS)
    test = write_csv(tmp_path / "t.csv", [("text", "label"), ("are you open today", "store_hours")])
    out = tmp_path / "p.jsonl"
    args = ["bot-eval", "--kb", str(kb), "--data", str(test), "--output", str(out), "--json"]
    result = CliRunner().invoke(app, args, env={"PARLEY_BOT_MIN_CONFIDENCE": "0.0"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["threshold"] == 0.0
    assert json.loads(out.read_text())["intent"] == "store_hours"
    bad = write_csv(tmp_path / "bad.csv", [("intent", "question"), ("a", "b")])
    result = CliRunner().invoke(
        app, ["bot-eval", "--kb", str(bad), "--data", str(test), "--output", str(out)]
    )
    assert result.exit_code == 2 and "line 1: missing columns" in result.output


def test_knowledge_base_reloads_when_its_file_changes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "kb.csv", KB_ROWS)
    triager = Triager(REPO_ROOT / "models", knowledge_base=path)
    assert {a.id for a in triager.knowledge.answers} == {"store_hours", "returns", "gift_cards"}
    extra = [
        ("parking", q, "Free parking behind the store." if i == 0 else "", "general", "")
        for i, q in enumerate(
            ["is there parking", "where can I park", "do you have a car park", "can I park at the store"]
        )
    ]
    write_csv(path, [*KB_ROWS, *extra])
    os.utime(path, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert "parking" in {a.id for a in triager.knowledge.answers}
    # A broken edit leaves the previous knowledge base serving.
    path.write_text("intent,question\nparking,where\n")
    assert "parking" in {a.id for a in triager.knowledge.answers}
    assert triager.classify([Item("m", "hello")])[0].bot_answer.abstained


def test_static_vectors_rank_a_paraphrase_without_shared_words_above_an_unrelated_question(
    tmp_path: Path,
) -> None:
    from parley.classifier import static_vectors

    path = write_csv(tmp_path / "kb.csv", KB_ROWS)
    vectors = static_vectors.shipped(REPO_ROOT / "models")
    words_only, semantic = KnowledgeBase.from_file(path), KnowledgeBase.from_file(path, static=vectors)
    assert (words_only.retrieval, semantic.retrieval) == ("classifier", "semantic")
    paraphrase, unrelated = "when does the shop shut tonight", "is my flight to Rome delayed?"
    conf_words = words_only.scores([paraphrase, unrelated])[1]
    conf_semantic = semantic.scores([paraphrase, unrelated])[1]
    # Character and word n-grams find nothing of "store hours" in the paraphrase; the sentence vectors do.
    assert conf_words[0] < conf_words[1]
    assert conf_semantic[0] > conf_semantic[1] + 0.1
    best, _ = semantic.scores([paraphrase, unrelated])
    assert semantic.answers[best[0]].id == "store_hours"


def test_bot_eval_retrieves_with_the_shipped_static_vectors(tmp_path: Path) -> None:
    kb = write_csv(tmp_path / "kb.csv", KB_ROWS)
    test = write_csv(
        tmp_path / "t.csv", [("text", "label"), ("when does the shop shut tonight", "store_hours")]
    )
    summary = bot_eval.run(kb, test, tmp_path / "p.jsonl", threshold=0.3)
    assert summary["retrieval"] == "semantic" and summary["answered"] == 1 and summary["precision"] == 1.0
    assert summary["best_threshold_at_target_precision"]["coverage"] == 1.0


def test_the_best_threshold_answers_the_query_it_was_taken_from() -> None:
    # 0.4567 rounded to 0.457 would leave its own query unanswered and report no coverage at all.
    labels, predicted = ["returns", "oos"], np.array(["returns", "returns"])
    best = bot_eval.best_coverage(labels, predicted, np.array([0.4567, 0.2]), precision=0.95)
    assert best["coverage"] == 1.0 and best["precision"] == 1.0 and best["threshold"] == 0.456
