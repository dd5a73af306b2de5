import csv
from pathlib import Path

from parley.classifier.training.labelling import correction_rows

CORRECTIONS = [
    {
        "dataset": "corrections",
        "id": "x:1",
        "intent": "urgent",
        "topic": "account_access",
        "source": "desk correction by supervisor boss at 1700000000",
        "text": "someone keeps using my card",
    },
    {
        "dataset": "corrections",
        "id": "x:2",
        "intent": "praise",
        "topic": "",
        "source": "desk correction by agent sue at 1",
        "text": "thanks!",
    },
]


def test_corrections_become_hand_labelled_rows_with_their_source(tmp_path: Path) -> None:
    rows = correction_rows(CORRECTIONS, tmp_path, weight=1.0)
    assert [(r.dataset, r.id, r.text, r.intent, r.topic) for r in rows] == [
        ("corrections", "x:1", "someone keeps using my card", "urgent", "account_access"),
        ("corrections", "x:2", "thanks!", "praise", "general"),
    ]
    with (tmp_path / "labels" / "corrections_train.csv").open(newline="") as f:
        written = list(csv.DictReader(f))
    # The label file keeps who corrected and when, never the customer's text.
    assert [(r["id"], r["intent"], r["source"]) for r in written] == [
        ("x:1", "urgent", "desk correction by supervisor boss at 1700000000"),
        ("x:2", "praise", "desk correction by agent sue at 1"),
    ]
    assert "text" not in written[0]
