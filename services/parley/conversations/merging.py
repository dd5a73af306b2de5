"""Out of order: held conversations and merges.

A reply whose parent is unknown is held in a conversation of its own (listed nowhere) that waits for the
parent; when the parent arrives, the held conversation merges into the parent's, so the grouping follows the
reply chains whatever the arrival order. The sweep opens the held conversations whose parent did not come in
time. A merged conversation keeps a pointer to where it went (`merged_into`), so ids handed out earlier still
work.
"""

from __future__ import annotations

import logging
from typing import Any

from parley import lua
from parley.clock import Clock
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.messages import channel_name
from parley.rpc import Aborted
from parley.store import Redis, Replicas, stored_turns
from parley.v1 import common_pb2, conversations_pb2

from .scripts import Scripts, merge_args, message_args
from .store import ConversationKeys, as_text, conversation_id_for
from .threading import Placement, owner_roles, sent_at

log = logging.getLogger(__name__)

# How long a reply that arrived before its parent keeps a place for the parent (and a merged conversation
# its pointer).
AWAITING_TTL_SECONDS = 7 * 24 * 3600
MERGE_ATTEMPTS = 8
MERGE_HOPS = 8  # a merge chain is short
# Held conversations looked at per partition and sweep, of each kind (the next sweep takes the rest).
SWEEP_BATCH = 1000
# The sweep also looks for the parent of each held conversation from this long after it was held until this
# long after (then once more at its timeout). Not sooner: the parent's own Thread merges it as a rule, also
# when its worker was killed (the batch is delivered again after `claim_idle_ms`, 30 s by default), and every
# extra merge is one more multi-key write a failover can cut in two.
REUNITE_AFTER_SECONDS = 90.0
REUNITE_WINDOW_SECONDS = 300.0
STATE_NEW = conversations_pb2.CONVERSATION_STATE_NEW


class Merges:
    def __init__(
        self, settings: Settings, redis: Redis, keys: ConversationKeys, clock: Clock, scripts: Scripts
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.scripts = scripts
        # On a cluster, the copy is on a replica before the merge's event, that before the merged conversation
        # is retired, and that before the listings: a failover never keeps a later step without the earlier.
        self.replicas = Replicas(settings, redis)

    async def merge(self, src: str, dst: str) -> str:
        """Move every message and decision of `src` into `dst` (the reply chain joins them), leaving `src`
        as a pointer to `dst`. Idempotent: a merged conversation is not merged again. A `src` not written yet
        becomes the pointer at once, so the Thread about to write it goes to `dst` instead (thread.lua).

        Returns the conversation the messages went to: `dst`, or the one a concurrent merge moved `dst`
        into meanwhile; '' when nothing was merged."""
        for _ in range(MERGE_ATTEMPTS):
            src, dst = await self.current(src), await self.current(dst)
            outcome = await self.merge_once(src, dst)
            if outcome is not None:
                return dst if outcome else ""
        raise Aborted(f"conversation {src} kept changing while it was merged; retry")

    async def current(self, cid: str) -> str:
        """The conversation `cid` is now: itself, or the one it was merged into."""
        for _ in range(MERGE_HOPS):
            into = as_text(await self.redis.hget(self.keys.meta(cid), "merged_into"))
            if not into:
                break
            cid = into
        return cid

    async def merge_once(self, src: str, dst: str) -> bool | None:
        """One pass of `merge`: None when `src` or `dst` changed under it (read again)."""
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(k.meta(src))
            pipe.hgetall(k.turns(src))
            pipe.hgetall(k.legacy_bodies(src))
            pipe.hgetall(k.triage(src))
            pipe.hgetall(k.routing(src))
            pipe.hgetall(k.applied(src))
            pipe.zrange(k.agents(src), 0, -1, withscores=True)
            pipe.hmget(k.meta(dst), ["owner", "held", "channel", "state", "merged_into"])
            raw_meta, turns, legacy, triage, routing, applied, agents, target = await pipe.execute()
        meta = {as_text(a): as_text(b) for a, b in raw_meta.items()}
        if src == dst:
            return False
        if meta.get("merged_into") or target[4]:
            # Merged away since `current` read it (a concurrent merge of either): follow it. Taken for
            # "nothing to do", the reply's wait was dropped and its conversation stayed apart.
            return None
        if not target[2]:
            return False  # `dst` not written: nothing to merge into
        now = self.clock.now()
        placements = [
            Placement(common_pb2.InboundMessage.FromString(body), dst, existing=True)
            for _, body in stored_turns(turns, legacy, {}).values()
        ]
        placements.sort(key=lambda p: sent_at(p.message, now))
        owner_roles(placements, as_text(target[0]))
        async with lua.pipeline(self.redis) as pipe:
            args = merge_args(now, len(placements))
            for p in placements:
                args += message_args(p, now)
            await self.scripts.thread(keys=k.thread_script_keys(dst), args=args, client=pipe)
            for name, table in (("triage", triage), ("routing", routing), ("applied", applied)):
                if table:
                    pipe.hset(getattr(k, name)(dst), mapping=table)
            if agents:
                pipe.zadd(k.agents(dst), dict(agents), nx=True)
            for name in ("intent", "topic", "team", "agent", "sla_due_at"):
                if meta.get(name):
                    pipe.hsetnx(k.meta(dst), name, meta[name])
            for p in placements:
                pipe.set(k.message_index(p.message.message_id), dst)
            if meta.get("thread_key"):
                pipe.set(meta["thread_key"], dst)
            copied = await pipe.execute()
        if as_text(copied[0][0]) == "merged":
            return None  # `dst` itself was merged meanwhile: follow it
        await self.replicas.confirm()
        # The router hears of the merge before `src` is retired, once: published after the retirement, an
        # event a failover took back was gone for good (the Thread retried finds its message in `dst` and
        # merges nothing), and the router never folded `src`'s routing state into `dst`'s.
        moved = {"into": dst, "messages": len(placements)}
        async with lua.pipeline(self.redis) as pipe:
            event = EventRecord("conversation.merged", src, "", now, moved)
            add_to_pipeline(pipe, k.keys, [event], self.settings.events_maxlen, once=f"{src}:merged")
            await pipe.execute()
        await self.replicas.confirm()
        # Retire `src` only if nothing was written into it since it was read, else copy again.
        retire_args = [meta.get("rev", ""), dst, AWAITING_TTL_SECONDS]
        if not await self.scripts.retire(keys=[k.meta(src), *k.parts(src)], args=retire_args):
            return None
        await self.replicas.confirm()
        await self._unlist(src, dst, meta, target, now)
        return True

    async def _unlist(self, src: str, dst: str, meta: dict[str, str], target: list[Any], now: float) -> None:
        """Take a merged conversation out of the listings and move its target up them."""
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            channel = int(meta.get("channel") or 0)
            for index in (k.index_all(src), k.index_channel(channel, src), k.index_opened(src)):
                pipe.zrem(index, src)
            pipe.zrem(k.index_state(int(meta.get("state") or 0), src), src)
            pipe.zrem(k.held(src), src)
            if meta.get("owner_person"):
                pipe.zrem(k.customers.profile_conversations(meta["owner_person"]), src)
            if not target[1]:  # a held target stays unlisted
                pipe.zadd(k.index_all(dst), {dst: now}, gt=True)
                pipe.zadd(k.index_channel(int(as_text(target[2])), dst), {dst: now}, gt=True)
            await pipe.execute()

    async def reunite(self, waiting: dict[str, str]) -> set[str]:
        """Those of the held conversations in `waiting` (each with the parent it awaits) whose parent is
        stored after all, merged into the parent's conversation; returns them. The parent's own Thread merges
        them as a rule; this catches a parent that arrived without seeing the wait (on a Redis Cluster a
        failover can lose the mark, which was acknowledged but not yet replicated). The parent is found by its
        message index, or in the conversation it would have opened."""
        if not waiting:
            return set()
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for parent in waiting.values():
                pipe.get(k.message_index(parent))
                pipe.zscore(k.messages(conversation_id_for(parent)), parent)
            found = await pipe.execute()
        reunited = set()
        for n, (cid, parent) in enumerate(waiting.items()):
            indexed, opened = as_text(found[2 * n]), found[2 * n + 1] is not None
            target = indexed or (conversation_id_for(parent) if opened else "")
            if target and target != cid and await self.merge(cid, target):
                log.info("held conversation %s merged into its parent's %s by the sweep", cid, target)
                reunited.add(cid)
        return reunited

    async def sweep_held(self) -> int:
        """Reunite the held conversations whose parent is stored after all (see `reunite`), then open those
        whose parent did not arrive in time; returns how many were opened."""
        k = self.keys
        now = self.clock.now()
        cutoff = now - self.settings.conversations_held_timeout_seconds
        recent = (repr(now - REUNITE_WINDOW_SECONDS), repr(now - REUNITE_AFTER_SECONDS))
        partitions = k.held_partitions()
        async with lua.pipeline(self.redis) as pipe:
            for key in partitions:
                pipe.zrangebyscore(key, "-inf", repr(cutoff), start=0, num=SWEEP_BATCH)
            for key in partitions:
                pipe.zrangebyscore(key, *recent, start=0, num=SWEEP_BATCH)
            found = await pipe.execute()
        overdue = [as_text(c) for cids in found[: len(partitions)] for c in cids]
        young = [as_text(c) for cids in found[len(partitions) :] for c in cids]
        looked_at = [*overdue, *young]
        fields = ["held", "merged_into", "awaits", "channel", "opened_at", "state"]
        async with lua.pipeline(self.redis) as pipe:
            for cid in looked_at:
                pipe.hmget(k.meta(cid), fields)
            read = await pipe.execute()
        rows = {cid: [as_text(v) for v in row] for cid, row in zip(looked_at, read, strict=True)}
        waiting = {
            cid: parent for cid, (held, merged, parent, *_) in rows.items() if held and not merged and parent
        }
        reunited = await self.reunite(waiting)
        cids = [cid for cid in overdue if cid not in reunited]
        if not cids:
            return 0
        released = 0
        events = []
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                held, merged, _, channel, opened_at, state = rows[cid]
                pipe.zrem(k.held(cid), cid)
                if not held or merged or not channel:
                    continue
                released += 1
                pipe.hdel(k.meta(cid), "held")
                pipe.zadd(k.index_all(cid), {cid: now}, gt=True)
                pipe.zadd(k.index_channel(int(channel), cid), {cid: now}, gt=True)
                pipe.zadd(k.index_opened(cid), {cid: float(opened_at)}, nx=True)
                pipe.zadd(k.index_state(int(state or STATE_NEW), cid), {cid: now})
                attrs = {"channel": channel_name(int(channel)), "reason": "parent did not arrive"}
                events.append(EventRecord("conversation.opened", cid, "", now, attrs))
            add_to_pipeline(pipe, k.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        return released
