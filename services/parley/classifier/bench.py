"""`parley classify-bench`: classification speed in-process and through the Classify RPC.

In-process: one loaded Triager classifies the messages in batches (five rounds after a warm-up; the best
and the median are reported).
RPC: the classifier server runs in its own process (as in production) and the client keeps two Classify
batches in flight; requests are built before the clock starts. Both figures are messages per second on this
machine; they are reported, never asserted.
"""

from __future__ import annotations

import asyncio
import csv
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parley.classifier.model import Item, Triager
from parley.classifier.server import settle_process
from parley.config import REPO_ROOT

DEMO_CSV = REPO_ROOT / "services" / "parley" / "demo" / "demo_conversations.csv"
TWCS_CSV = Path("../shared/data/twcs/twcs_head5000.csv")


@dataclass(frozen=True)
class Speed:
    messages: int
    batch: int
    source: str
    in_process_per_s: float
    rpc_per_s: float | None
    cpus: int
    # The median of the in-process rounds (in_process_per_s is the best): on a shared machine they differ.
    in_process_median_per_s: float | None = None


def load_texts(path: Path | None) -> tuple[list[str], str]:
    """Customer texts to classify: from `path` (a `text` column; in the twcs layout only inbound rows), else
    real twcs traffic when the public data is present, else the team's demo conversations."""
    for candidate in [path] if path else [TWCS_CSV, DEMO_CSV]:
        if candidate and candidate.exists():
            with candidate.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            texts = [r["text"] for r in rows if r.get("inbound", "True").strip().lower() == "true"]
            if texts:
                return texts, str(candidate)
    raise FileNotFoundError(f"no messages to classify in {path or TWCS_CSV}")


def repeat_to(texts: list[str], count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def in_process(triager: Triager, texts: list[str], batch: int, rounds: int = 5) -> float:
    """Messages per second of Triager.classify over `texts` in batches (best round)."""
    return max(in_process_rounds(triager, texts, batch, rounds))


def in_process_rounds(triager: Triager, texts: list[str], batch: int, rounds: int = 5) -> list[float]:
    """Messages per second of Triager.classify over `texts` in batches, one figure per round, after a
    warm-up."""
    items = [Item(f"x:{i}", t, "x") for i, t in enumerate(texts)]
    triager.classify(items[:batch])  # warm-up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(0, len(items), batch):
            triager.classify(items[i : i + batch])
        rates.append(len(items) / (time.perf_counter() - start))
    return rates


async def through_rpc(models_dir: str, texts: list[str], batch: int, in_flight: int = 2) -> float:
    """Messages per second through ClassifierService.Classify, server in a child process (`models_dir`
    absolute)."""
    import grpc

    from parley.ports import free_port
    from parley.rpc import wait_ready
    from parley.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2

    port = free_port()
    env = {
        **os.environ,
        "PARLEY_MODELS_DIR": models_dir,
        "PARLEY_CLASSIFIER_PORT": str(port),
        "PARLEY_MAX_BATCH": str(max(batch, 1000)),
        # A private child on 127.0.0.1 measured for classification alone, so it runs without tokens.
        "PARLEY_AUTH_DISABLED": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "parley", "serve", "classifier"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        address = f"127.0.0.1:{port}"
        await wait_ready(address, timeout=60)
        requests = [
            classifier_pb2.ClassifyRequest(
                items=[
                    classifier_pb2.ClassifyItem(message_id=f"x:{i + j}", text=t, channel=common_pb2.CHANNEL_X)
                    for j, t in enumerate(texts[i : i + batch])
                ]
            )
            for i in range(0, len(texts), batch)
        ]
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 64 << 20)]
        ) as ch:
            stub = classifier_pb2_grpc.ClassifierServiceStub(ch)
            await stub.Classify(requests[0], timeout=60)  # warm-up
            queue = list(requests)
            start = time.perf_counter()

            async def worker() -> None:
                while queue:
                    await stub.Classify(queue.pop(), timeout=120)

            await asyncio.gather(*(worker() for _ in range(in_flight)))
            return len(texts) / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(10)


def run(
    models_dir: Path,
    data: Path | None,
    count: int,
    batch: int,
    rpc: bool,
    say: Callable[[str], object] = lambda _: None,
) -> Speed:
    texts, source = load_texts(data)
    texts = repeat_to(texts, count)
    say(f"{len(texts)} messages from {source}, batches of {batch}")
    triager = Triager(models_dir)
    # Measured as `parley serve classifier` runs: with the collector tuned the way the server tunes it.
    settle_process()
    rounds = in_process_rounds(triager, texts, batch)
    local, median = max(rounds), statistics.median(rounds)
    say(f"in-process: {local:,.0f} messages/s (best of {len(rounds)} rounds; median {median:,.0f})")
    remote = None
    if rpc:
        remote = asyncio.run(through_rpc(str(Path(models_dir).resolve()), texts, batch))
        say(f"Classify RPC: {remote:,.0f} messages/s")
    return Speed(
        len(texts),
        batch,
        source,
        round(local),
        round(remote) if remote else None,
        os.cpu_count() or 0,
        round(median),
    )


def as_dict(speed: Speed) -> dict[str, Any]:
    return asdict(speed)
