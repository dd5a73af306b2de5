"""The threading decision: which conversation each message of a batch joins or opens, worked out without I/O.

`threader.Threader` reads what the store knows into a `Snapshot`, calls `decide`, claims what the `Plan`
asks for, hands the answers to `settle`, reads the joined conversations (`follow` walks merges,
`reopen_late` applies the reopen window), reads their recent turns for `assign_roles`, and writes. Every
rule of threading lives in this module, so each can be tested without Redis:

- a reply joins its parent's conversation (the parent stored, or anywhere in the batch: messages are placed in
  sent order); a reply whose parent is unknown opens a conversation held until the parent arrives, and other
  replies to the same unknown parent join it;
- a message in a platform thread (an X DM conversation, a Messenger thread) joins that thread's conversation;
- a customer's private message that has neither joins their open public conversation with the same brand
  account when their public exchange is recent enough (the conversation moved to private);
- otherwise a message opens a conversation whose id derives from its own id;
- a parent arriving after its replies takes their held conversation into its own (a merge);
- the owner coming back after the reopen window to a resolved conversation opens a new one linked to it;
- roles: the brand, the owner (the first customer author of the conversation), the other participants;
  the context of a customer message is the owner's and participants' turns before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from parley.clock import from_timestamp
from parley.config import Settings
from parley.messages import message_id
from parley.v1 import common_pb2, conversations_pb2

from .profiles import identity_of
from .store import conversation_id_for

CONTEXT_TURNS = 5
ROLE_OWNER = conversations_pb2.PARTICIPANT_ROLE_OWNER
ROLE_PARTICIPANT = conversations_pb2.PARTICIPANT_ROLE_PARTICIPANT
ROLE_BRAND = conversations_pb2.PARTICIPANT_ROLE_BRAND
STATE_RESOLVED = conversations_pb2.CONVERSATION_STATE_RESOLVED
CLOSED_STATES = frozenset({STATE_RESOLVED, conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION})

Message = common_pb2.InboundMessage


def is_outbound(message: Message) -> bool:
    return message.direction == common_pb2.DIRECTION_OUTBOUND


def sent_at(message: Message, now: float) -> float:
    """A message's time: when it was sent, else when it reached us, else now."""
    if message.HasField("sent_at"):
        return from_timestamp(message.sent_at)
    if message.HasField("received_at"):
        return from_timestamp(message.received_at)
    return now


def parent_of(message: Message) -> str:
    """The id of the message it replies to ('' for none)."""
    return message_id(message.channel, message.in_reply_to_id) if message.in_reply_to_id else ""


@dataclass(frozen=True)
class ThreadRef:
    """A platform thread (an X dm_conversation_id, a Messenger thread) of one brand account on one channel."""

    channel: int
    brand_account_id: str
    thread_id: str


def thread_of(message: Message) -> ThreadRef | None:
    if not message.platform_thread_id:
        return None
    return ThreadRef(message.channel, message.brand_account_id, message.platform_thread_id)


@dataclass(frozen=True)
class Rules:
    """The configured windows of threading."""

    private_window_seconds: float
    reopen_window_seconds: float
    context_turns: int = CONTEXT_TURNS

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            private_window_seconds=settings.conversations_private_window_seconds,
            reopen_window_seconds=settings.conversations_reopen_window_seconds,
        )


@dataclass(frozen=True)
class PublicExchange:
    """A person's latest public exchange, and what its conversation is now."""

    conversation_id: str
    at: float
    state: int = 0
    brand_account_id: str = ""
    merged: bool = False


@dataclass
class Snapshot:
    """What the store knew before the batch. Every value is non-empty: a missing key has no entry."""

    now: float
    conversation_of: dict[str, str] = field(default_factory=dict)  # message id -> its conversation
    awaiting: dict[str, str] = field(
        default_factory=dict
    )  # message id -> a reply's conversation waiting for it
    threads: dict[ThreadRef, str] = field(default_factory=dict)  # platform thread -> its conversation
    persons: dict[str, str] = field(default_factory=dict)  # identity -> the person it was linked to
    last_public: dict[str, PublicExchange] = field(default_factory=dict)  # person -> their latest

    def person(self, message: Message) -> str:
        """The customer behind a message's author ('' for the brand's own messages)."""
        if is_outbound(message):
            return ""
        identity = identity_of(message.channel, message.author.id)
        return self.persons.get(identity) or identity


@dataclass(frozen=True)
class Record:
    """What threading needs of a stored conversation (all empty for one claimed but not written yet)."""

    owner: str = ""
    state: int = 0
    resolved_at: float = 0.0
    owner_person: str = ""
    held: bool = False
    previous: str = ""  # the resolved conversation it follows (opened after the reopen window)


@dataclass
class Placement:
    """Where one message of a batch goes."""

    message: Message
    conversation_id: str
    existing: bool  # threaded by an earlier call
    new_conversation: bool = False  # this message opens a conversation created by this call
    claimed: bool = False  # this call set its message index
    role: conversations_pb2.ParticipantRole = conversations_pb2.PARTICIPANT_ROLE_UNSPECIFIED
    context: list[str] = field(default_factory=list)
    held: bool = False  # opens its conversation held: its parent has not arrived
    previous: str = ""  # opens a conversation that follows this resolved one
    person: str = ""  # the customer behind the author
    thread: ThreadRef | None = None  # the platform thread it opens


@dataclass
class Plan:
    """The placements of a batch and what the store must be asked to claim for them."""

    placed: dict[str, Placement] = field(default_factory=dict)  # by message id, in sent order
    order: list[Placement] = field(default_factory=list)  # in the batch's order
    threads: dict[ThreadRef, str] = field(default_factory=dict)  # threads this batch claims
    awaiting: dict[str, str] = field(default_factory=dict)  # unknown parent -> the reply's conversation
    opened: set[str] = field(default_factory=set)  # conversations this batch opens
    merges: dict[str, str] = field(default_factory=dict)  # a stored conversation -> the one it merges into
    moved: dict[str, str] = field(default_factory=dict)  # meant to open -> the conversation that won a race
    overwrite: list[Placement] = field(default_factory=list)  # claimed, then moved: index to rewrite
    waited: dict[str, str] = field(default_factory=dict)  # message id -> a reply that waited unseen
    # A conversation a reply of the batch opened ahead of its parent -> the parent's, now that the parent is
    # known elsewhere: joined if the opened one was never stored, else merged into it, unless it is the
    # successor of a resolved conversation (`Threader._records`).
    rejoin: dict[str, str] = field(default_factory=dict)

    def fresh(self) -> list[Placement]:
        """The placements of messages not threaded before (their indexes are to be claimed)."""
        return [p for p in self.placed.values() if not p.existing]

    def groups(self) -> dict[str, list[Placement]]:
        """The placements by conversation."""
        out: dict[str, list[Placement]] = {}
        for p in self.placed.values():
            out.setdefault(p.conversation_id, []).append(p)
        return out


@dataclass
class Claims:
    """The store's answers to a plan's claims."""

    threads: dict[ThreadRef, str] = field(default_factory=dict)  # thread -> who had it already ('' none)
    # New message -> (who had threaded it already, a waiting reply's conversation), '' for none.
    messages: dict[str, tuple[str, str]] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # awaited parent -> who holds its place ('' none)


# ---- 1. placing a batch -----------------------------------------------------------------------------------


def public_candidates(snapshot: Snapshot, messages: Sequence[Message]) -> list[Message]:
    """The customer DMs that may continue a public conversation: new, with no known parent or thread."""
    return [
        m
        for m in messages
        if m.visibility == common_pb2.VISIBILITY_PRIVATE
        and not is_outbound(m)
        and m.message_id not in snapshot.conversation_of
        and not (m.in_reply_to_id and parent_of(m) in snapshot.conversation_of)
        and not ((thread := thread_of(m)) and thread in snapshot.threads)
    ]


def continued_public(snapshot: Snapshot, messages: Sequence[Message], rules: Rules) -> dict[str, str]:
    """The open public conversation each new customer DM continues, if any: the same person, the same
    brand account, a public exchange within the window, a conversation neither closed nor merged."""
    out = {}
    for m in public_candidates(snapshot, messages):
        exchange = snapshot.last_public.get(snapshot.person(m))
        if exchange is None or exchange.merged or exchange.brand_account_id != m.brand_account_id:
            continue
        if exchange.state in CLOSED_STATES:
            continue
        if 0 <= sent_at(m, snapshot.now) - exchange.at <= rules.private_window_seconds:
            out[m.message_id] = exchange.conversation_id
    return out


def decide(snapshot: Snapshot, messages: Sequence[Message], rules: Rules) -> Plan:
    """Place every message in sent order (batch order on ties), so a reply finds a parent anywhere in the
    batch. The plan says which conversation each message joins or opens, which platform threads and awaited
    parents to claim, and which stored conversations merge into which."""
    plan = Plan()
    public = continued_public(snapshot, messages, rules)
    for _, m in sorted(enumerate(messages), key=lambda im: (sent_at(im[1], snapshot.now), im[0])):
        if m.message_id in plan.placed:
            continue
        p = plan.placed[m.message_id] = _place(snapshot, plan, m, public)
        # Replies that arrived before this message: their conversation becomes this one's.
        waiting = plan.awaiting.get(m.message_id) or snapshot.awaiting.get(m.message_id, "")
        if waiting and waiting != p.conversation_id:
            if waiting in plan.opened:  # opened by this batch: nothing stored yet, re-point it
                _repoint(plan, waiting, p.conversation_id)
                plan.awaiting.pop(m.message_id, None)
            else:
                plan.merges[waiting] = p.conversation_id
    plan.order = [plan.placed[m.message_id] for m in messages]
    return plan


def _place(snapshot: Snapshot, plan: Plan, m: Message, public: Mapping[str, str]) -> Placement:
    parent = parent_of(m)
    parent_unknown = bool(parent) and parent not in plan.placed and parent not in snapshot.conversation_of
    existing = snapshot.conversation_of.get(m.message_id)
    if existing:
        p = Placement(m, existing, existing=True)
        if parent_unknown:
            # Threaded before, its parent still unknown: the hold and the wait are asked for again. On a
            # cluster a failover can take back the held record or the wait (other slots) and keep the claim;
            # written again, they cost nothing when they are there (thread.lua, await.lua keep the first).
            p.held = existing == conversation_id_for(m.message_id)
            plan.awaiting.setdefault(parent, existing)
        elif parent and existing == conversation_id_for(m.message_id):
            # Threaded before as a reply ahead of its parent, which is known now. A failover can take back
            # the wait the parent would have merged it by, and the record of the conversation it opened (or
            # its first Thread died before writing it): then nothing else brings the two together.
            at = (
                plan.placed[parent].conversation_id
                if parent in plan.placed
                else snapshot.conversation_of[parent]
            )
            if at != existing:
                plan.rejoin[existing] = at
    else:
        p = Placement(m, _joins(snapshot, plan, m), existing=False)
        thread = thread_of(m)
        if not p.conversation_id and m.message_id in public:
            # A DM continuing the customer's open public conversation joins it, marked private.
            p.conversation_id = public[m.message_id]
            if thread:
                plan.threads[thread] = p.conversation_id
        if not p.conversation_id:
            p.conversation_id = conversation_id_for(m.message_id)
            p.new_conversation = True
            p.held = parent_unknown
            plan.opened.add(p.conversation_id)
            if thread:
                plan.threads[thread] = p.conversation_id
                p.thread = thread
        if parent_unknown:  # the first reply to wait for a parent keeps the place
            plan.awaiting.setdefault(parent, p.conversation_id)
    p.person = snapshot.person(m)
    return p


def _joins(snapshot: Snapshot, plan: Plan, m: Message) -> str:
    """The conversation a new message joins; '' opens a new one.

    In order: its parent's (or, parent unknown, that of an earlier reply waiting for the same parent),
    that of its platform thread.
    """
    if m.in_reply_to_id:
        parent = parent_of(m)
        if parent in plan.placed:
            return plan.placed[parent].conversation_id
        if parent in snapshot.conversation_of:
            return snapshot.conversation_of[parent]
        # Another reply to the same unknown parent is already waiting for it: join that one.
        if parent in plan.awaiting or parent in snapshot.awaiting:
            return plan.awaiting.get(parent) or snapshot.awaiting[parent]
    thread = thread_of(m)
    if thread:
        return plan.threads.get(thread) or snapshot.threads.get(thread, "")
    return ""


def _repoint(plan: Plan, old: str, new: str) -> None:
    """A conversation this batch was about to open joins another (its awaited parent arrived)."""
    for p in plan.placed.values():
        if p.conversation_id == old:
            p.conversation_id, p.new_conversation, p.held = new, False, False
    for thread, cid in plan.threads.items():
        if cid == old:
            plan.threads[thread] = new
    for parent, cid in plan.awaiting.items():
        if cid == old:
            plan.awaiting[parent] = new
    plan.opened.discard(old)


# ---- 2. after the claims ----------------------------------------------------------------------------------


def settle(plan: Plan, snapshot: Snapshot, claims: Claims) -> None:
    """Apply the claims' answers: a message another call threaded first stays where that call put it; a
    thread or awaited parent another call claimed first is joined; a reply that registered its wait after
    the snapshot merges into the message it waited for."""
    # A parent threaded meanwhile is joined; a reply that waited first keeps the place.
    for cid, winner in [
        *((cid, claims.threads.get(thread, "")) for thread, cid in plan.threads.items()),
        *((cid, claims.parents.get(parent, "")) for parent, cid in plan.awaiting.items()),
    ]:
        if winner and winner != cid and cid in plan.opened:
            plan.moved.setdefault(cid, winner)
    # A stored conversation whose wait was lost and taken since (the parent threaded, or another reply
    # waiting first) merges into the winner: nothing else would bring them together.
    for parent, cid in plan.awaiting.items():
        winner = claims.parents.get(parent, "")
        if winner and winner != cid and cid not in plan.opened:
            plan.merges.setdefault(cid, winner)
    for mid, (winner, waiting) in claims.messages.items():
        p = plan.placed[mid]
        if winner:  # threaded meanwhile by another call: its answer stands
            p.conversation_id, p.existing, p.new_conversation = winner, True, False
            if winner != conversation_id_for(mid):
                plan.moved.setdefault(conversation_id_for(mid), winner)
        else:
            p.claimed = True
            if waiting and not snapshot.awaiting.get(mid):
                plan.waited[mid] = waiting
    follow(plan, plan.moved)
    # Replies that registered their wait after the snapshot: their conversations merge into this one.
    for mid, waiting in plan.waited.items():
        if waiting not in plan.opened and waiting != plan.placed[mid].conversation_id:
            plan.merges.setdefault(waiting, plan.placed[mid].conversation_id)
    merges = {src: plan.moved.get(dst, dst) for src, dst in plan.merges.items()}
    plan.merges = {src: dst for src, dst in merges.items() if src != dst}


def follow(plan: Plan, into: Mapping[str, str]) -> None:
    """Move the placements of each conversation in `into` to where it went (a race lost, a merge). The
    message index moves too: of a message this call claimed, and of one threaded before whose index still
    names the old conversation (a worker killed between its claim and its write, the merge in between)."""
    for p in plan.placed.values():
        target = into.get(p.conversation_id)
        if target:
            p.conversation_id, p.new_conversation, p.held = target, False, False
            if p.claimed or p.existing:
                plan.overwrite.append(p)


def to_read(plan: Plan, records: Mapping[str, Record]) -> list[str]:
    """The stored conversations the batch joins whose records are not read yet."""
    return list(
        dict.fromkeys(
            p.conversation_id
            for p in plan.placed.values()
            if not p.new_conversation and p.conversation_id not in records
        )
    )


def reopen_late(plan: Plan, records: Mapping[str, Record], rules: Rules, now: float) -> None:
    """The owner coming back to a resolved conversation after the reopen window opens a new conversation
    (from their first such message) linked to the resolved one; within the window thread.lua reopens it."""
    successor: dict[str, str] = {}
    for p in sorted(plan.placed.values(), key=lambda q: sent_at(q.message, now)):
        record = records.get(p.conversation_id)
        if not record or not p.claimed or is_outbound(p.message) or p.new_conversation:
            continue
        late = now - record.resolved_at > rules.reopen_window_seconds
        if record.state != STATE_RESOLVED or record.owner != p.message.author.id or not late:
            continue
        old = p.conversation_id
        if old not in successor:
            successor[old] = conversation_id_for(p.message.message_id)
            p.new_conversation, p.previous = True, old
            p.thread = thread_of(p.message)
        p.conversation_id = successor[old]
        plan.overwrite.append(p)


# ---- 3. roles and context ---------------------------------------------------------------------------------


def earliest(plan: Plan, now: float) -> dict[str, float]:
    """Each conversation's earliest message in the batch (its context is read from before it)."""
    out: dict[str, float] = {}
    for p in plan.placed.values():
        sent = sent_at(p.message, now)
        out[p.conversation_id] = min(sent, out.get(p.conversation_id, sent))
    return out


def assign_roles(
    plan: Plan,
    records: Mapping[str, Record],
    history: Mapping[str, list[str]],
    rules: Rules,
    now: float,
) -> None:
    """Each message's role and context, in its conversation's time order. `history` holds each stored
    conversation's customer turns before the batch, oldest first."""
    cids = list(dict.fromkeys(p.conversation_id for p in plan.placed.values()))
    owners = {cid: records[cid].owner if cid in records else "" for cid in cids}
    turns: dict[str, list[tuple[float, str]]] = {cid: [] for cid in cids}
    batch_order = {id(p): i for i, p in enumerate(plan.placed.values())}
    for p in sorted(plan.placed.values(), key=lambda q: (sent_at(q.message, now), batch_order[id(q)])):
        m, cid = p.message, p.conversation_id
        sent = sent_at(m, now)
        earlier = [text for t, text in turns[cid] if t < sent]
        p.context = (list(history.get(cid, [])) + earlier)[-rules.context_turns :]
        if is_outbound(m):
            p.role = ROLE_BRAND
            continue
        if not owners[cid]:
            owners[cid] = m.author.id
        p.role = ROLE_OWNER if m.author.id == owners[cid] else ROLE_PARTICIPANT
        turns[cid].append((sent, m.text))


def owner_roles(placements: Sequence[Placement], owner: str) -> None:
    """Roles of messages (in sent order) moved into a conversation whose owner is `owner` ('' when it has
    none yet: the first customer's)."""
    for p in placements:
        if is_outbound(p.message):
            p.role = ROLE_BRAND
        else:
            owner = owner or p.message.author.id
            p.role = ROLE_OWNER if p.message.author.id == owner else ROLE_PARTICIPANT


# ---- 4. brand replies -------------------------------------------------------------------------------------


def stored_parents(plan: Plan, snapshot: Snapshot) -> dict[str, str]:
    """The stored parents (id -> conversation) of the batch's customer replies: their bodies tell whether
    the customer answers the brand."""
    out = {}
    for p in plan.order:
        parent = parent_of(p.message)
        if is_outbound(p.message) or not parent or parent in plan.placed:
            continue
        if parent in snapshot.conversation_of:
            out[parent] = snapshot.conversation_of[parent]
    return out


def brand_replies(plan: Plan, stored: Mapping[str, Message]) -> dict[str, str]:
    """For each customer message that answers a brand message (in the batch or in `stored`), that brand
    message's text: the classifier reads "here it is" differently after "please DM us your order number"."""
    out = {}
    for p in plan.order:
        parent = parent_of(p.message)
        if is_outbound(p.message) or not parent:
            continue
        source = plan.placed[parent].message if parent in plan.placed else stored.get(parent)
        if source is not None and is_outbound(source):
            out[p.message.message_id] = source.text
    return out
