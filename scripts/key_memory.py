"""How the suite's key memory spreads over the masters of a local 3-master cluster.

Starts a cluster (parley.cluster.LocalCluster) and the suite as separate processes on it, ingests N synthetic
messages, waits until the pipeline has drained, then sums MEMORY USAGE of every key of the run on each
master and prints each master's share and the largest keys (JSON).

    .venv/bin/python scripts/key_memory.py --messages 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services"))

from parley.auth import mint  # noqa: E402
from parley.authz import INGEST  # noqa: E402
from parley.bench import free_port, synthetic_messages  # noqa: E402
from parley.chaos.run import _drain, _send_all  # noqa: E402
from parley.cluster import LocalCluster  # noqa: E402
from parley.config import SERVICES, Settings  # noqa: E402
from parley.suite import ChildProcessSuite, replace_ports  # noqa: E402


def per_node(cluster: LocalCluster, prefix: str, top: int) -> dict:
    """Bytes of the run's keys on each master, and the largest keys."""
    nodes: dict[str, int] = {}
    sizes: list[tuple[int, str, str]] = []
    for node in cluster.nodes:
        client = node.client()
        if client.info("replication")["role"] != "master":
            continue
        total = 0
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            size = client.memory_usage(key, samples=0) or 0
            total += size
            sizes.append((size, key, str(node.port)))
        nodes[str(node.port)] = total
    everything = sum(nodes.values()) or 1
    return {
        "bytes_per_master": nodes,
        "share_per_master": {port: round(b / everything, 3) for port, b in nodes.items()},
        "largest_keys": [
            {"key": k.removeprefix(prefix + ":"), "bytes": b, "master": port}
            for b, k, port in sorted(sizes, reverse=True)[:top]
        ],
    }


async def run(count: int, workers: int, top: int) -> dict:
    cluster = LocalCluster()
    url = cluster.start()
    secret = secrets.token_urlsafe(48)
    prefix = f"mem{int(time.time())}"
    settings = Settings(
        redis_url=url,
        redis_cluster=True,
        key_prefix=prefix,
        webhook_port=free_port(),
        metrics_port=0,
        auth_jwt_secret=secret,
        auth_token=mint(secret, "parley-key-memory", [INGEST], ttl=3600),
    )
    settings = replace_ports(settings, {name: free_port() for name in SERVICES})
    logs = tempfile.mkdtemp(prefix="parley-key-memory-")
    suite = await ChildProcessSuite.start(settings, workers=workers, log_dir=logs)
    try:
        acked = await _send_all(settings, synthetic_messages(count, prefix), batch=200)
        drained = await _drain(settings, timeout=600)
        await asyncio.sleep(3)  # the followers of the event stream catch up
        return {"messages": count, "acked": len(acked), "drained": drained} | per_node(cluster, prefix, top)
    finally:
        suite.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.workers, args.top)), indent=2))


if __name__ == "__main__":
    main()
