"""The urgent-review labels and their split: ids only (the texts' licence keeps them out of the project),
enough urgent messages to measure recall, and a tuning/report split fixed by the id alone."""

from __future__ import annotations

import csv

from parley.classifier.training import review_heldout
from parley.config import REPO_ROOT

LABELS = REPO_ROOT / "models" / "labels" / review_heldout.LABELS


def test_the_labels_hold_ids_and_labels_only() -> None:
    with LABELS.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["dataset", "id", "urgent", "negativereason"]
    assert {r["dataset"] for r in rows} == {"airline"} and {r["urgent"] for r in rows} == {"0", "1"}
    assert all(r["id"].isdigit() for r in rows) and len({r["id"] for r in rows}) == len(rows)


def test_enough_urgent_messages_in_each_half_to_measure_recall() -> None:
    rows = review_heldout.read_labels(LABELS)
    urgent = [tid for tid, is_urgent, _ in rows if is_urgent]
    assert len(urgent) >= 60
    halves = [review_heldout.half(tid) for tid in urgent]
    assert min(halves.count("tuning"), halves.count("report")) >= 20


def test_the_labels_do_not_reuse_a_labelled_id() -> None:
    ours = {tid for tid, _, _ in review_heldout.read_labels(LABELS)}
    for path in LABELS.parent.glob("airline_*.csv"):
        if path != LABELS:
            with path.open(newline="", encoding="utf-8") as f:
                assert not ours & {r["id"] for r in csv.DictReader(f)}, path.name


def test_the_split_depends_on_the_id_alone() -> None:
    assert review_heldout.half("569952282277773312") == review_heldout.half("569952282277773312")
    assert {review_heldout.half(str(i)) for i in range(20)} == {"tuning", "report"}


def test_the_threshold_spends_the_budget_and_no_more() -> None:
    # Flagged share of the traffic by threshold: the lowest threshold still within the budget is chosen,
    # whatever recall a higher one already reached.
    share = {1.01: 0.05, 0.5: 0.07, 0.2: 0.10, 0.1: 0.119, 0.05: 0.16, 0.01: 0.11}

    def at(t: float) -> dict[str, float]:
        return {"threshold": t, "flagged_share_traffic": share[t]}

    chosen = review_heldout.within_budget([1.01, 0.5, 0.2, 0.1, 0.05, 0.01], at)
    # 0.01 is within the share again, but flags never shrink as the threshold falls: the scan stops at 0.05.
    assert chosen["threshold"] == 0.1


def test_without_room_in_the_budget_only_the_rules_and_cues_flag() -> None:
    def at(t: float) -> dict[str, float]:
        return {"threshold": t, "flagged_share_traffic": 0.13}

    assert review_heldout.within_budget([1.01, 0.3], at)["threshold"] == 1.01
