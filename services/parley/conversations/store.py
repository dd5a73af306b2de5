"""Key names and Lua scripts of the conversations service.

Every key of one conversation carries the hash tag `{conversation_id}` (via `parley.store.Keys`), so each
script below touches one hash slot. The listing indexes and thread keys are single-key writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from parley.corrections import corrections_key
from parley.store import Keys


def conversation_id_for(opening_message_id: str) -> str:
    """The id of the conversation a message opens: derived from it, so two callers agree without a lock."""
    return "cv-" + hashlib.blake2b(opening_message_id.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True)
class ConversationKeys:
    keys: Keys

    # Per conversation (one slot).
    def meta(self, cid: str) -> str:
        return self.keys.conversation(cid)

    def messages(self, cid: str) -> str:
        """Sorted set: message id by sent time."""
        return self.keys.conversation_messages(cid)

    def bodies(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "bodies")

    def roles(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "roles")

    def inbound(self, cid: str) -> str:
        """Sorted set: inbound message id by sent time (for the classifier's context)."""
        return self.keys.conversation_part(cid, "inbound")

    def texts(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "texts")

    def triage(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "triage")

    def routing(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "routing")

    def applied(self, cid: str) -> str:
        """Message ids whose outcome already moved the conversation (replays change nothing)."""
        return self.keys.conversation_part(cid, "applied")

    def transitions(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "transitions")

    def agents(self, cid: str) -> str:
        """Sorted set: agent id by when it first touched the conversation."""
        return self.keys.conversation_part(cid, "agents")

    def corrections(self, cid: str) -> str:
        """List: corrections of its messages' triage (written by the router's desk API)."""
        return corrections_key(self.keys, cid)

    def events_applied(self, cid: str) -> str:
        """Ids of the lifecycle events already applied (the follower is at-least-once)."""
        return self.keys.conversation_part(cid, "events")

    def parts(self, cid: str) -> list[str]:
        """Every key of a conversation but its record."""
        names = (
            "bodies",
            "roles",
            "inbound",
            "texts",
            "triage",
            "routing",
            "applied",
            "transitions",
            "corrections",
        )
        return [self.messages(cid), *(self.keys.conversation_part(cid, n) for n in names)] + [
            self.agents(cid),
            self.events_applied(cid),
        ]

    def thread_script_keys(self, cid: str) -> list[str]:
        return [
            self.meta(cid),
            self.messages(cid),
            self.bodies(cid),
            self.roles(cid),
            self.inbound(cid),
            self.texts(cid),
            self.transitions(cid),
        ]

    def outcome_script_keys(self, cid: str) -> list[str]:
        return [
            self.meta(cid),
            self.triage(cid),
            self.routing(cid),
            self.applied(cid),
            self.transitions(cid),
            self.agents(cid),
        ]

    def event_script_keys(self, cid: str) -> list[str]:
        return [self.meta(cid), self.transitions(cid), self.events_applied(cid), self.agents(cid)]

    # Lookups by something other than the conversation (their own slots).
    def message_index(self, message_id: str) -> str:
        return self.keys.message_index(message_id)

    def thread(self, channel: int, brand_account_id: str, platform_thread_id: str) -> str:
        """The conversation of a platform thread (X dm_conversation_id, a Messenger thread)."""
        return self.keys.namespaced("thread", str(channel), brand_account_id, platform_thread_id)

    def awaiting(self, parent_message_id: str) -> str:
        """The conversation a reply opened while its parent was unknown: the parent joins it on arrival."""
        return self.keys.namespaced("awaiting", parent_message_id)

    def held(self) -> str:
        """Sorted set: held conversation id by when it was held (the sweep opens the overdue ones)."""
        return self.keys.namespaced("convheld")

    # Customers: an identity ("channel:author_id") points at its person; a person's keys share one slot.
    def identity(self, identity: str) -> str:
        return self.keys.namespaced("ident", identity)

    def profile(self, person: str) -> str:
        return self.keys.namespaced("person", f"{{{person}}}")

    def profile_identities(self, person: str) -> str:
        return self.keys.namespaced("person", f"{{{person}}}", "ids")

    def profile_conversations(self, person: str) -> str:
        """Sorted set: conversation id by opened time."""
        return self.keys.namespaced("person", f"{{{person}}}", "convs")

    def last_public(self, person: str) -> str:
        """'conversation_id time' of the person's latest public exchange (a DM may continue it)."""
        return self.keys.namespaced("person", f"{{{person}}}", "public")

    # Listing indexes: conversation id scored by updated time, and by opened time for metrics.
    def index_all(self) -> str:
        return self.keys.namespaced("convidx", "all")

    def index_state(self, state: int) -> str:
        return self.keys.namespaced("convidx", "state", str(state))

    def index_channel(self, channel: int) -> str:
        return self.keys.namespaced("convidx", "channel", str(channel))

    def index_opened(self) -> str:
        return self.keys.namespaced("convidx", "opened")


# Moves a conversation to a new state, keeping the handling time (time assigned to an agent), the last
# resolution time and the reopen count. Shared by the scripts below.
MOVE_LUA = """
local function move(meta, transitions, new, at, reason)
  local old = redis.call('HGET', meta, 'state') or '0'
  if old == new then return nil end
  local t = tonumber(at)
  if old == '4' then
    local since = tonumber(redis.call('HGET', meta, 'work_since') or at)
    if t > since then redis.call('HINCRBYFLOAT', meta, 'handling', t - since) end
  end
  if new == '4' then redis.call('HSET', meta, 'work_since', at) end
  if new == '6' then redis.call('HSET', meta, 'resolved_at', at) end
  if new == '7' then redis.call('HINCRBY', meta, 'reopen_count', 1) end
  redis.call('HSET', meta, 'state', new)
  redis.call('RPUSH', transitions, cjson.encode({state = tonumber(new), at = t, reason = reason}))
  return old
end
"""

# Adds a conversation's messages (idempotent) and keeps its timestamps. A new customer turn of the owner
# moves a conversation waiting on them back to its agent (or queue) and reopens a resolved one.
# KEYS: meta, messages, bodies, roles, inbound, texts, transitions
# ARGV: now, channel, brand_account_id, opened_at, new_state, count, held (1 opens it held), previous
#   conversation id, owner person, thread key, then per message 10 values:
#   message_id, sent_at, direction (1 inbound / 2 outbound), role, body, text, author_id, author, is_new,
#   visibility (1 public / 2 private)
# Returns {state, held ('1' or ''), the id of the message that moved it to private or '', then
#   (old, new, at) per transition}.
THREAD_SCRIPT = (
    MOVE_LUA
    + """
local meta = KEYS[1]
local now = ARGV[1]
local changes = {}
if redis.call('HSETNX', meta, 'state', ARGV[5]) == 1 then
  redis.call('HSET', meta, 'channel', ARGV[2], 'brand_account_id', ARGV[3], 'opened_at', ARGV[4],
    'updated_at', now)
  if ARGV[7] == '1' then redis.call('HSET', meta, 'held', '1') end
  if ARGV[8] ~= '' then redis.call('HSET', meta, 'previous', ARGV[8]) end
  if ARGV[9] ~= '' then redis.call('HSET', meta, 'owner_person', ARGV[9]) end
  redis.call('RPUSH', KEYS[7], cjson.encode({state = tonumber(ARGV[5]), at = tonumber(ARGV[4]),
    reason = 'opened'}))
end
if ARGV[10] ~= '' then redis.call('HSETNX', meta, 'thread_key', ARGV[10]) end
local moved = ''
local touched = false
local i = 11
for _ = 1, tonumber(ARGV[6]) do
  local mid, sent, dir, role = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local body, text, author_id = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local author, is_new, visibility = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  i = i + 10
  if visibility == '1' then
    redis.call('HSET', meta, 'public', '1')
  elseif visibility == '2' and redis.call('HGET', meta, 'public') == '1' then
    if redis.call('HSETNX', meta, 'moved_to_private', mid) == 1 then moved = mid end
  end
  if is_new == '1' and dir == '1' and role == '1' then
    local state = redis.call('HGET', meta, 'state')
    local to, reason = nil, nil
    if state == '5' then
      to = redis.call('HGET', meta, 'agent') and '4' or '3'
      reason = 'customer replied ' .. mid
    elseif state == '6' then
      to = '7'
      reason = 'customer came back ' .. mid
    end
    if to then
      local old = move(meta, KEYS[7], to, now, reason)
      if old then table.insert(changes, old); table.insert(changes, to); table.insert(changes, now) end
    end
  end
  redis.call('ZADD', KEYS[2], sent, mid)
  redis.call('HSET', KEYS[3], mid, body)
  redis.call('HSET', KEYS[4], mid, role)
  if is_new == '1' then touched = true end
  local t = tonumber(sent)
  if dir == '1' then
    redis.call('ZADD', KEYS[5], sent, mid)
    redis.call('HSET', KEYS[6], mid, text)
    if author_id ~= '' and redis.call('HSETNX', meta, 'owner', author_id) == 1 then
      redis.call('HSET', meta, 'owner_author', author)
    end
    local first = redis.call('HGET', meta, 'first_inbound_at')
    if not first or t < tonumber(first) then redis.call('HSET', meta, 'first_inbound_at', sent) end
  else
    -- First response: the earliest brand message after the first customer message.
    local first = redis.call('HGET', meta, 'first_inbound_at')
    if first and t >= tonumber(first) then
      for _, field in ipairs({'first_response_at', 'human_first_response_at'}) do
        local cur = redis.call('HGET', meta, field)
        if not cur or t < tonumber(cur) then redis.call('HSET', meta, field, sent) end
      end
    end
  end
end
if touched then
  local cur = redis.call('HGET', meta, 'updated_at')
  if not cur or tonumber(now) > tonumber(cur) then redis.call('HSET', meta, 'updated_at', now) end
end
local out = {redis.call('HGET', meta, 'state'), redis.call('HGET', meta, 'held') or '', moved}
for _, v in ipairs(changes) do table.insert(out, v) end
return out
"""
)

# Stores triage and routing per message; the first time a message's outcome is seen it may move the
# conversation (state, intent, topic, team, agent). Replays store the same bytes and move nothing.
# KEYS: meta, triage, routing, applied, transitions, agents
# ARGV: count, then per outcome 11 values:
#   message_id, triage, routing, new_state ('' = unchanged), intent ('' = keep), topic, team, agent, at,
#   bot_reply (1 when the bot answered: a first response), sla_due_at ('' = none)
# Returns {channel, updated_at ('' when nothing was applied), held, then (message_id, old, new, at) per
# transition}.
OUTCOME_SCRIPT = (
    MOVE_LUA
    + """
local meta = KEYS[1]
local changes = {redis.call('HGET', meta, 'channel') or '0', '', redis.call('HGET', meta, 'held') or ''}
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local mid, triage, routing, new_state = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local intent, topic, team, agent, at, bot = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
    ARGV[i + 9]
  local sla = ARGV[i + 10]
  i = i + 11
  if triage ~= '' then redis.call('HSET', KEYS[2], mid, triage) end
  if routing ~= '' then redis.call('HSET', KEYS[3], mid, routing) end
  if redis.call('HSETNX', KEYS[4], mid, at) == 1 then
    if intent ~= '' then redis.call('HSET', meta, 'intent', intent) end
    if topic ~= '' then redis.call('HSET', meta, 'topic', topic) end
    if team ~= '' then redis.call('HSET', meta, 'team', team) end
    if agent ~= '' then
      redis.call('HSET', meta, 'agent', agent)
      redis.call('ZADD', KEYS[6], 'NX', at, agent)
    end
    if sla ~= '' then redis.call('HSETNX', meta, 'sla_due_at', sla) end
    if bot == '1' then
      for _, field in ipairs({'first_response_at', 'bot_first_response_at'}) do
        local cur = redis.call('HGET', meta, field)
        if not cur or tonumber(at) < tonumber(cur) then redis.call('HSET', meta, field, at) end
      end
    end
    local old = new_state ~= '' and move(meta, KEYS[5], new_state, at, 'routing ' .. mid)
    if old then
      table.insert(changes, mid)
      table.insert(changes, old)
      table.insert(changes, new_state)
      table.insert(changes, at)
    end
    local cur = redis.call('HGET', meta, 'updated_at')
    if not cur or tonumber(at) > tonumber(cur) then redis.call('HSET', meta, 'updated_at', at) end
    changes[2] = redis.call('HGET', meta, 'updated_at')
  end
end
return changes
"""
)

# The inbound texts of a conversation sent before a time, newest first, at most ARGV[2].
# KEYS: inbound, texts; ARGV: before (exclusive), limit
CONTEXT_SCRIPT = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# Applies one lifecycle event from another service, once per event id.
# KEYS: meta, transitions, events_applied, agents
# ARGV: event_id, new_state ('' = none), at, reason, agent ('' = none), team ('' = keep),
#   human_reply (1: a reply an agent sent, a first human response), bot_reply (1)
# Returns {'merged', conversation_id} when the conversation was merged into another, {} when there is no
# such conversation or the event was applied already, else {'ok', old, new} ({'ok'} when the state held).
EVENT_SCRIPT = (
    MOVE_LUA
    + """
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then return {} end
local into = redis.call('HGET', meta, 'merged_into')
if into then return {'merged', into} end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return {} end
local at = ARGV[3]
if ARGV[5] ~= '' then
  redis.call('HSET', meta, 'agent', ARGV[5])
  redis.call('ZADD', KEYS[4], 'NX', at, ARGV[5])
end
if ARGV[6] ~= '' then redis.call('HSET', meta, 'team', ARGV[6]) end
local first = redis.call('HGET', meta, 'first_inbound_at')
local fields = {}
if ARGV[7] == '1' then fields = {'first_response_at', 'human_first_response_at'} end
if ARGV[8] == '1' then fields = {'first_response_at', 'bot_first_response_at'} end
if first and tonumber(at) >= tonumber(first) then
  for _, field in ipairs(fields) do
    local cur = redis.call('HGET', meta, field)
    if not cur or tonumber(at) < tonumber(cur) then redis.call('HSET', meta, field, at) end
  end
end
local cur = redis.call('HGET', meta, 'updated_at')
if not cur or tonumber(at) > tonumber(cur) then redis.call('HSET', meta, 'updated_at', at) end
if ARGV[2] == '' then return {'ok'} end
-- A reply sent after the conversation closed (a sign-off) does not open it again.
local state = redis.call('HGET', meta, 'state')
if ARGV[7] == '1' and (state == '6' or state == '8') then return {'ok'} end
local old = move(meta, KEYS[2], ARGV[2], at, ARGV[4])
if not old then return {'ok'} end
return {'ok', old, ARGV[2]}
"""
)
