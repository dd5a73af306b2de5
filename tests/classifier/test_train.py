"""Training, evaluation and CSV classification end to end, on a tiny data folder written here."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from parley.classifier.model import Triager
from parley.classifier.train import classify_csv, evaluate, in_test, load_rows, train
from parley.config import REPO_ROOT

AIRLINE_HEADER = ["tweet_id", "airline_sentiment", "airline_sentiment_confidence", "negativereason", "text"]
AIRLINE = [
    ("positive", "@AcmeAir thanks for the great flight, crew were lovely"),
    ("positive", "@AcmeAir love the new seats, thank you"),
    ("positive", "@AcmeAir best crew ever, thanks"),
    ("negative", "@AcmeAir my bag is lost again, terrible"),
    ("negative", "@AcmeAir flight Late Flight for 3 hours, awful service"),
    ("negative", "@AcmeAir Cancelled Flightled my flight, worst airline"),
    ("neutral", "@AcmeAir what is the baggage allowance for economy?"),
    ("neutral", "@AcmeAir do you fly to Boston?"),
    ("neutral", "@AcmeAir watching planes at the airport today"),
    ("neutral", "@AcmeAir RT our new ad"),
]


def write_data(root: Path) -> None:
    (root / "airline_sentiment").mkdir(parents=True)
    with (root / "airline_sentiment" / "Tweets.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(AIRLINE_HEADER)
        for i, (sentiment, text) in enumerate(AIRLINE * 4):
            # Every text appears four times: de-duplication must keep one of each.
            w.writerow([str(1000 + i), sentiment, "1.0", "", text])
        # A duplicate id with a conflicting label is dropped.
        w.writerow(["1000", "negative", "1.0", "", AIRLINE[0][1]])
    (root / "banking77").mkdir()
    for split in ("train", "test"):
        with (root / "banking77" / f"{split}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "category"])
            w.writerow([f"my card was stolen, what do I do ({split})", "lost_or_stolen_card"])
            w.writerow([f"how long until my new card arrives ({split})", "card_arrival"])
            w.writerow([f"I was charged twice for one payment ({split})", "transaction_charged_twice"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("train")
    data, models = root / "data", root / "models"
    write_data(data)
    models.mkdir()
    for name in ("label_mapping.yaml", "examples.yaml", "knowledge_base.yaml"):
        shutil.copy(REPO_ROOT / "models" / name, models / name)
    messages: list[str] = []
    metrics = train(data, models, messages.append)
    assert messages and messages[-1].startswith("done")
    return data, models, metrics


def test_rows_are_mapped_and_deduplicated(trained: tuple[Path, Path, dict]) -> None:
    data, models, _ = trained
    rows, stats = load_rows(data, models, lambda _: None)
    airline = {r.text: r.intent for r in rows if r.dataset == "airline_sentiment"}
    # 10 distinct airline texts: id 1000 carries two sentiments and is dropped, its text survives elsewhere.
    assert len(airline) == 10
    assert airline["@AcmeAir what is the baggage allowance for economy?"] == "question"
    assert airline["@AcmeAir watching planes at the airport today"] == "other"
    assert airline["@AcmeAir Cancelled Flightled my flight, worst airline"] == "complaint"
    banking = {r.text.split(" (")[0]: r.intent for r in rows if r.dataset == "banking77"}
    assert banking == {
        "my card was stolen, what do I do": "urgent",
        "how long until my new card arrives": "question",
        "I was charged twice for one payment": "complaint",
    }
    # 40 airline rows: the conflicting id 1000 loses its row, then 39 rows collapse to 10 texts.
    assert stats["duplicates_removed"] == 29


def test_artifacts_metrics_and_card(trained: tuple[Path, Path, dict]) -> None:
    _, models, metrics = trained
    for name in ("intent.skops", "topic.skops", "metrics.json", "model_card.md", "confusion_intent.png"):
        assert (models / name).stat().st_size > 0
    saved = json.loads((models / "metrics.json").read_text())
    assert saved["summary"] == metrics["summary"]
    assert set(saved["intent_with_rules"]["per_class"]) == {
        "praise",
        "question",
        "complaint",
        "urgent",
        "other",
    }
    assert "CC BY-NC-SA 4.0" in (models / "model_card.md").read_text()
    assert Triager(models).version == metrics["model_version"]


def test_split_is_stable() -> None:
    rows, _ = load_rows(Path("/nonexistent"), REPO_ROOT / "models", lambda _: None)
    first = [in_test(r, 0.2, "s") for r in rows]
    assert first == [in_test(r, 0.2, "s") for r in rows]
    assert 0 < sum(first) < len(first)


def test_evaluate_and_classify_csv(tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    with labelled.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerow(["someone hacked my account and changed my password", "urgent"])
        w.writerow(["thanks, love the new app", "praise"])
        w.writerow(["how do I reset my password?", "question"])
        w.writerow(["my parcel is a week late again", "complaint"])
    result = evaluate(labelled, REPO_ROOT / "models")
    assert result["rows"] == 4
    assert sum(map(sum, result["confusion_matrix"])) == 4
    assert result["per_class"]["urgent"]["support"] == 1

    out = tmp_path / "out.jsonl"
    assert classify_csv(labelled, out, REPO_ROOT / "models") == 4
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["message_id"] for line in lines] == ["0", "1", "2", "3"]
    assert lines[0]["intent"] == "urgent" and lines[0]["urgency_reasons"]
