"""The Grafana dashboard asks only for metrics the processes serve, and shows each of them."""

from __future__ import annotations

import asyncio
import json
import re

from prometheus_client import REGISTRY

from parley.config import REPO_ROOT
from parley.telemetry import metrics  # noqa: F401 - registers the counters and histograms
from parley.telemetry.collectors import PipelineCollector, RouterCollector

DASHBOARD = REPO_ROOT / "docs" / "grafana" / "parley.json"
METRIC = re.compile(r"\b((?:parley|grpc_server)_[a-z_]+)\b")


SUFFIX = re.compile(r"_(bucket|count|sum|created|total|info)$")


def served_families(settings) -> set[str]:  # noqa: ANN001
    """Metric family names (no _total/_bucket/... suffix) this code serves, labelled children or not."""
    return {
        SUFFIX.sub("", family.name)
        for collector in (REGISTRY, PipelineCollector(settings), RouterCollector(settings))
        for family in collector.collect()
    }


async def test_every_panel_queries_served_metrics_and_every_metric_has_a_panel(settings, redis) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    asked = {SUFFIX.sub("", name) for expr in exprs for name in METRIC.findall(expr)}
    served = await asyncio.to_thread(served_families, settings)  # the collectors run their own event loop
    assert asked - served == set()
    ours = {n for n in served if n.startswith(("parley_", "grpc_server_"))}
    assert ours - asked == set()
