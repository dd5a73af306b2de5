"""Throughput of the webhook endpoint: signed WhatsApp and X deliveries posted over HTTP to a real ingestion
server, each message appended to the inbound log. Reports, does not judge.

    python -m parley.ingestion.webhooks.bench --deliveries 2000 --per-delivery 10 --concurrency 32

Uses REDIS_URL when set, else an embedded Valkey; keys go under a fresh prefix that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
from pydantic import SecretStr

from parley import store
from parley.config import Settings
from parley.ingestion.server import create_server
from parley.ingestion.webhooks import signatures

SECRET = "bench-secret"


def whatsapp_delivery(n: int, per_delivery: int) -> dict[str, Any]:
    messages = [
        {
            "from": f"4860{n:07d}",
            "id": f"wamid.bench.{n}.{i}",
            "timestamp": str(int(time.time()) - 60),
            "type": "text",
            "text": {"body": f"Where is my order KW-{n:06d}? It was due on Monday."},
        }
        for i in range(per_delivery)
    ]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15557014823", "phone_number_id": "109874315563201"},
        "contacts": [{"profile": {"name": f"Customer {n}"}, "wa_id": f"4860{n:07d}"}],
        "messages": messages,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "118230667792145", "changes": [{"field": "messages", "value": value}]}],
    }


def x_delivery(n: int, per_delivery: int) -> dict[str, Any]:
    tweets = [
        {
            "id_str": f"{1724575902713135489 + n * 1000 + i}",
            "text": f"@kettleworks my refund for order KW-{n:06d} has not arrived",
            "in_reply_to_status_id_str": "1724512093817553152",
            "user": {
                "id_str": f"{2891047735 + n}",
                "screen_name": f"customer{n}",
                "name": "C",
                "followers_count": 10,
            },
            "timestamp_ms": str(int(time.time() * 1000) - 60_000),
        }
        for i in range(per_delivery)
    ]
    return {"for_user_id": "1469582203714441216", "tweet_create_events": tweets}


async def run(deliveries: int, per_delivery: int, concurrency: int, network: str) -> dict[str, Any]:
    settings = Settings(
        key_prefix=f"bench{uuid.uuid4().hex[:8]}",
        webhook_meta_app_secret=SecretStr(SECRET),
        webhook_x_consumer_secret=SecretStr(SECRET),
    )
    embedded = None
    if not settings.redis_url:
        embedded = store.EmbeddedValkey()
        settings = settings.model_copy(update={"redis_url": embedded.start()})
    build = whatsapp_delivery if network == "meta" else x_delivery
    header = "X-Hub-Signature-256" if network == "meta" else "x-twitter-webhooks-signature"
    sign = signatures.meta_signature if network == "meta" else signatures.x_signature
    bodies = [json.dumps(build(n, per_delivery)).encode() for n in range(deliveries)]
    requests = [(body, {"Content-Type": "application/json", header: sign(SECRET, body)}) for body in bodies]
    running = await create_server(settings, "127.0.0.1:0")
    url = f"http://127.0.0.1:{running.webhook_port}/webhooks/{network}"
    accepted = 0
    try:
        queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
        for item in requests:
            queue.put_nowait(item)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client() -> int:
                count = 0
                while not queue.empty():
                    body, headers = queue.get_nowait()
                    async with session.post(url, data=body, headers=headers) as response:
                        if response.status != 200:
                            raise RuntimeError(f"{response.status}: {await response.text()}")
                        count += (await response.json())["accepted"]
                return count

            started = time.perf_counter()
            accepted = sum(await asyncio.gather(*(client() for _ in range(concurrency))))
            elapsed = time.perf_counter() - started
    finally:
        await running.stop(0)
        redis = store.connect(settings)
        await store.drop_namespace(redis, settings.key_prefix)
        await redis.aclose()
        if embedded is not None:
            embedded.stop()
    return {
        "network": network,
        "deliveries": deliveries,
        "messages_accepted": accepted,
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(deliveries / elapsed, 1),
        "messages_per_second": round(accepted / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--per-delivery", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--network", choices=("meta", "x"), default="meta")
    args = parser.parse_args()
    result = asyncio.run(run(args.deliveries, args.per_delivery, args.concurrency, args.network))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
