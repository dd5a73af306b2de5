"""The speed benchmark's in-process part on the team's demo messages (figures are reported, not asserted)."""

from parley.classifier import bench
from parley.classifier.model import Triager
from parley.config import REPO_ROOT


def test_in_process_benchmark_runs_on_demo_messages() -> None:
    texts, source = bench.load_texts(bench.DEMO_CSV)
    assert source.endswith("demo_conversations.csv") and texts
    # Only inbound rows are customer messages.
    assert all(not t.startswith("@5001") for t in texts)
    assert len(bench.repeat_to(texts, 50)) == 50
    rate = bench.in_process(Triager(REPO_ROOT / "models"), bench.repeat_to(texts, 50), batch=20, rounds=1)
    assert rate > 0
