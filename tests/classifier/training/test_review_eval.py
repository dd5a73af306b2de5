"""The urgent-review operating point that training chooses and reports."""

import pytest

from parley.classifier.training import review_eval


def test_operating_point_is_chosen_on_tuning_files_only() -> None:
    labels = ["urgent", "urgent"] + ["other"] * 18
    p = [0.9, 0.6, 0.5] + [0.1] * 17
    base = [False] * 20
    # Recall 1.0 needs 0.6 (10% flagged); 0.5 would flag a third message (15% > 12%).
    assert review_eval.choose_threshold(labels, base, p) == 0.6
    # When the share allows no full recall: the best recall within it, at the highest such threshold.
    assert review_eval.choose_threshold(labels, base, [0.9, 0.4, 0.5] + [0.1] * 17) == 0.9
    # Unseen rows never move the threshold.
    unseen_labels = ["urgent"] * 3
    files = {"twcs_heldout.csv": list(range(20)), "airline_fresh_heldout.csv": [20, 21, 22]}
    report = review_eval.report(files, labels + unseen_labels, base + [False] * 3, p + [0.05, 0.7, 0.9])
    assert report["threshold"] == 0.6
    assert report["unseen"]["recall"] == pytest.approx(2 / 3)
    assert report["tuning"]["flagged_share"] == pytest.approx(0.1)
