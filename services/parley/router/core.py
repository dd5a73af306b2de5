"""The router: routing decisions, team queues, the agent desk (claim, decline, transfer, escalate, resolve,
presence), queue status and staffing. `Router` is assembled from one layer per responsibility, each in its
own module: `base` (settings, policy, scripts), `queues`, `assignment`, `holds` (a Route batch's arrivals and
sticky holds), `routing` (Route), `desk`, `loop` (the background step) and `views`; the pure decision
functions live in `decide`.

State per conversation (hash under the conversation's hash tag, see `keys`): state (queued, assigned, bot,
resolved, merged), team, tier, priority, sla_due, enqueued_at, agent, assigned_at, reason (of the
assignment), topic, language, bot_replied, resolved_at, last_agent (for sticky assignment), declined_by,
sla_alerted (the deadline already escalated for), claim_token / revoked (claim recovery), pending:<message
id> (a Route decision whose effects are not written yet), merging_into / merged_into / merge_action (a
merge fencing, then pointing at, the surviving conversation: see `merges`), version.

A reopened conversation whose previous agent is busy, away or briefly offline waits for them (the sticky
hold): its queue entry is reserved for that agent in the team's `held` hash, written with the entry itself,
and the queue scripts give it to nobody else until the hold ends.

Taking a conversation away from an agent (re-queue after the grace period, transfer, escalation, merge)
pushes a withdrawn assignment to their feed in the same step.
"""

from __future__ import annotations

from parley.router.common import PRESENCES
from parley.router.loop import Loop
from parley.router.views import Views

__all__ = ["PRESENCES", "Router"]


class Router(Loop, Views):
    """Every router operation; the server runs `tick()` in a loop, tests call it with a manual clock."""
