"""A cluster client starts from any of several nodes: a process that starts while the node named first is
down (a master failing over in `parley chaos --cluster`, an operator's node in maintenance) still connects."""

from __future__ import annotations

import asyncio

from parley.cluster import LocalCluster
from parley.config import Settings
from parley.ports import free_port
from parley.store import connect


async def test_a_cluster_client_starts_through_a_later_node_when_the_first_is_down() -> None:
    cluster = LocalCluster()
    await asyncio.to_thread(cluster.start)
    try:
        down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        others = ",".join(f"redis://127.0.0.1:{node.port}/0" for node in cluster.nodes[1:])
        client = connect(Settings(redis_url=f"{down},{others}", redis_cluster=True))
        try:
            for n in range(12):  # keys on every master
                await client.set(f"seeds:{{k{n}}}", n)
            assert [int(await client.get(f"seeds:{{k{n}}}")) for n in range(12)] == list(range(12))
        finally:
            await client.aclose()
    finally:
        await asyncio.to_thread(cluster.stop)
