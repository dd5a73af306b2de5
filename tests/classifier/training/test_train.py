"""Training, evaluation and CSV classification end to end, on a tiny data folder written here."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from parley.classifier.csv_triage import classify_csv
from parley.classifier.model import Triager
from parley.classifier.training.card import refresh_card, targets_table, wilson_interval
from parley.classifier.training.evaluation import calibration, evaluate
from parley.classifier.training.fitting import balance, source_weights
from parley.classifier.training.labelling import in_test, load_rows
from parley.classifier.training.run import train
from parley.classifier.training.sources import Row, airline_text, twcs_brand_replies, twcs_context
from parley.config import REPO_ROOT

TWCS_HEADER = [
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
]
# Two threads written by the team: (id, author, inbound, text, parent).
TWCS = [
    ("1", "900001", "True", "@AcmeCare my router keeps dropping every hour", ""),
    ("2", "AcmeCare", "False", "@900001 Sorry! Can you DM us your account number?", "1"),
    ("3", "900001", "True", "@AcmeCare done, sent you a DM", "2"),
    ("4", "AcmeCare", "False", "@900001 Thanks, please restart it and tell us", "3"),
    ("5", "900001", "True", "@AcmeCare restarted it, still dropping", "4"),
    ("6", "900002", "True", "@AcmeAir is there wifi on the plane?", ""),
    ("7", "900003", "True", "@AcmeCare thank you, all sorted now!", ""),
]

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


def write_twcs(root: Path) -> None:
    (root / "twcs").mkdir(parents=True)
    with (root / "twcs" / "twcs_head5000.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TWCS_HEADER)
        for tid, author, inbound, text, parent in TWCS:
            w.writerow([tid, author, inbound, "Tue Oct 31 22:10:47 +0000 2017", text, "", parent])


def write_labels(models: Path) -> None:
    (models / "labels").mkdir()
    (models / "labels" / "twcs_train.csv").write_text(
        "dataset,id,intent,topic\ntwcs,1,complaint,technical\ntwcs,3,other,technical\ntwcs,7,praise,general\n"
    )
    (models / "labels" / "twcs_heldout.csv").write_text(
        "dataset,id,intent,topic\ntwcs,5,complaint,technical\ntwcs,6,question,travel\n"
    )
    (models / "labels" / "airline_heldout.csv").write_text(
        "dataset,id,intent,topic\nairline,1006,question,travel\n"
    )
    # A blind second labelling of the held-out rows, disagreeing on one of the three.
    (models / "labels" / "second_annotator.csv").write_text(
        "dataset,id,intent,topic\ntwcs,5,complaint,technical\ntwcs,6,other,travel\nairline,1006,question,travel\n"
    )
    (models / "labels" / "bot_judgements.csv").write_text(
        "dataset,id,answer_id,resolves\ntwcs,6,wifi_onboard,yes\n"
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("train")
    data, models = root / "data", root / "models"
    write_data(data)
    write_twcs(data)
    models.mkdir()
    for name in ("label_mapping.yaml", "examples.yaml", "knowledge_base.yaml", "static_vectors.npz"):
        shutil.copy(REPO_ROOT / "models" / name, models / name)
    write_labels(models)
    messages: list[str] = []
    metrics = train(data, models, messages.append)
    assert messages and messages[-1].startswith("done")
    return data, models, metrics


def test_rows_are_mapped_and_deduplicated(trained: tuple[Path, Path, dict]) -> None:
    data, models, _ = trained
    rows, stats = load_rows(data, models, lambda _: None)
    airline = {r.text: r.intent for r in rows if r.dataset == "airline_sentiment"}
    # 10 distinct airline texts: id 1000 carries two sentiments and is dropped, its text survives elsewhere;
    # the held-out tweet 1006 is dropped with every copy of its text.
    assert len(airline) == 9
    assert "@AcmeAir what is the baggage allowance for economy?" not in airline
    assert airline["@AcmeAir do you fly to Boston?"] == "question"
    assert airline["@AcmeAir watching planes at the airport today"] == "other"
    # The file's re-save artefact is undone when the data is read.
    assert airline["@AcmeAir cancelled my flight, worst airline"] == "complaint"
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


def test_twcs_context_is_the_earlier_customer_turns(tmp_path: Path) -> None:
    write_twcs(tmp_path)
    context = twcs_context(tmp_path)
    assert context["1"] == ()
    assert context["3"] == ("@AcmeCare my router keeps dropping every hour",)
    assert context["5"] == ("@AcmeCare my router keeps dropping every hour", "@AcmeCare done, sent you a DM")
    assert "2" not in context  # brand tweets are not classified


def test_twcs_brand_reply_is_the_brand_tweet_answered(tmp_path: Path) -> None:
    write_twcs(tmp_path)
    replies = twcs_brand_replies(tmp_path)
    assert replies == {
        "3": "@900001 Sorry! Can you DM us your account number?",
        "5": "@900001 Thanks, please restart it and tell us",
    }


def test_hand_labels_train_with_context_and_heldout_never_trains(trained: tuple[Path, Path, dict]) -> None:
    data, models, _ = trained
    rows, stats = load_rows(data, models, lambda _: None)
    twcs = {r.id: r for r in rows if r.dataset == "twcs"}
    assert set(twcs) == {"1", "3", "7"}
    assert twcs["3"].intent == "other" and twcs["3"].context == (
        "@AcmeCare my router keeps dropping every hour",
    )
    assert twcs["3"].brand_reply == "@900001 Sorry! Can you DM us your account number?"
    assert twcs["1"].brand_reply == ""
    assert stats["hand_labels_heldout"] == 3
    # The held-out airline tweet is not trained on.
    assert "1006" not in {r.id for r in rows if r.dataset == "airline_sentiment"}


def test_heldout_bot_rules_and_card(trained: tuple[Path, Path, dict]) -> None:
    _, models, metrics = trained
    hand = metrics["hand_heldout"]
    assert hand["rows"] == 3 and hand["with_context_rows"] == 1
    assert sum(map(sum, hand["confusion_matrix"])) == 3
    assert 0.0 <= hand["calibration"]["ece"] <= 1.0
    bot = metrics["bot"]
    assert bot["messages"] == len([t for t in TWCS if t[2] == "True"]) + len(AIRLINE) * 4
    assert bot["judged"] + len(bot["unjudged"]) == bot["answered"]
    assert metrics["rules"]["precheck_mismatches"] == 0
    card = (models / "model_card.md").read_text()
    for phrase in ("praise → complaint", "urgent → praise", "hand-labelled held-out", "ECE", "Brier"):
        assert phrase in card
    assert (models / "confusion_intent_heldout.png").stat().st_size > 0
    assert {name: v["rows"] for name, v in hand["by_file"].items()} == {
        "airline_heldout.csv": 1,
        "twcs_heldout.csv": 2,
    }


def test_second_annotator_is_scored_against_the_heldout_labels(trained: tuple[Path, Path, dict]) -> None:
    _, models, metrics = trained
    agreement = metrics["annotator_agreement"]
    assert agreement["rows"] == 3
    assert agreement["accuracy"] == pytest.approx(2 / 3)
    assert agreement["per_class"]["question"]["recall"] == pytest.approx(0.5)
    card = (models / "model_card.md").read_text()
    assert "second annotator" in card
    # The card's verdict follows the figures: this second annotator's macro-F1 (0.833) reaches the target,
    # its urgent recall (no urgent rows) does not.
    assert agreement["macro_f1"] == pytest.approx(5 / 6)
    assert "within what a second careful reader reaches" in card and "recall 0.90 is beyond it" in card


def test_airline_resave_artefacts_are_undone() -> None:
    assert airline_text("@AcmeAir Cancelled Flightled my flight") == "@AcmeAir cancelled my flight"
    assert (
        airline_text("flight Late Flight again, see you Late Flightr") == "flight late again, see you later"
    )
    assert airline_text("a plain tweet") == "a plain tweet"


def test_refresh_card_adds_speed(trained: tuple[Path, Path, dict]) -> None:
    _, models, _ = trained
    speed = {"messages": 10, "batch": 5, "source": "x", "in_process_per_s": 123, "rpc_per_s": 45, "cpus": 2}
    (models / "speed.json").write_text(json.dumps(speed))
    refresh_card(models)
    card = (models / "model_card.md").read_text()
    assert "in-process 123 messages/s" in card and "45 messages/s" in card
    assert json.loads((models / "metrics.json").read_text())["speed"] == speed
    # With the median round, the target is judged by it, not by the best round.
    speed = {**speed, "in_process_per_s": 21000, "in_process_median_per_s": 19000}
    (models / "speed.json").write_text(json.dumps(speed))
    refresh_card(models)
    card = (models / "model_card.md").read_text()
    assert "in-process 21,000 messages/s** (best of the rounds; median 19,000)" in card
    row = "| in-process batched classification (median round) | ≥ 20,000 msg/s | 19,000 msg/s | not met"
    assert row in card
    (models / "speed.json").unlink()


def test_source_shares_set_each_sources_total_weight() -> None:
    rows = [Row("a", str(i), "t", "other", "general") for i in range(30)]
    rows += [Row("b", str(i), "t", "other", "general") for i in range(10)]
    w = source_weights(rows, {"a": 1.0, "b": 3.0})
    assert np.isclose(w[:30].sum() * 3, w[30:].sum())
    assert np.isclose(w.sum(), len(rows))


def test_calibration_measures() -> None:
    labels = ("a", "b")
    perfect = calibration(["a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]]), labels)
    assert perfect["ece"] == 0.0 and perfect["brier"] == 0.0
    # Always 0.9 sure, right half the time: the gap is 0.4.
    unsure = calibration(["a", "b"], np.array([[0.9, 0.1], [0.9, 0.1]]), labels)
    assert np.isclose(unsure["ece"], 0.4)
    assert np.isclose(unsure["brier"], ((0.1**2 + 0.1**2) + (0.9**2 + 0.9**2)) / 2)


def test_balance_gives_every_class_the_same_total_weight() -> None:
    labels = ["a", "a", "a", "b"]
    w = balance(labels, np.array([1.0, 1.0, 2.0, 0.5]))
    assert np.isclose(w[:3].sum(), w[3]) and np.isclose(w.sum(), 4.5)
    assert np.isclose(w[2], 2 * w[0])  # weights within a class keep their ratios


def test_wilson_interval_is_wide_for_few_trials() -> None:
    assert wilson_interval(3, 3) == pytest.approx((0.4385, 1.0), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson_interval(95, 100)
    assert 0.88 < low < 0.95 < high < 0.98


def test_bot_precision_on_few_answers_is_not_called_met_outright() -> None:
    def bot(correct: int, judged: int) -> dict:
        return {
            "bot": {
                "correct": correct,
                "judged": judged,
                "precision": correct / judged,
                "answered": judged,
                "predicted_questions": 100,
                "coverage_of_predicted_questions": judged / 100,
            }
        }

    few = targets_table(bot(3, 3))
    assert "| met on too few answers to be sure (95% interval 0.44–1.00) |" in few
    many = targets_table(bot(196, 200))
    assert many.splitlines()[2].endswith("| 0.980 | met |")
    assert "not met" in targets_table(bot(8, 10))


def test_urgent_review_labels_never_train(tmp_path: Path) -> None:
    # The urgent-review operating point is chosen and measured on these messages: neither they nor a
    # duplicate of their text may train the model.
    data, models = tmp_path / "data", tmp_path / "models"
    write_data(data)
    models.mkdir()
    for name in ("label_mapping.yaml", "examples.yaml"):
        shutil.copy(REPO_ROOT / "models" / name, models / name)
    (models / "labels").mkdir()
    (models / "labels" / "airline_urgent_review.csv").write_text(
        "dataset,id,urgent,negativereason\nairline,1003,1,Lost Luggage\n"
    )
    rows, stats = load_rows(data, models, lambda _: None)
    airline = [r for r in rows if r.dataset == "airline_sentiment"]
    assert stats["urgent_review_labels"] == 1
    assert "1003" not in {r.id for r in airline}
    assert AIRLINE[3][1] not in {r.text for r in airline}
    # The other airline texts still train.
    assert AIRLINE[4][1].replace("Late Flight", "late") in {r.text for r in airline}
