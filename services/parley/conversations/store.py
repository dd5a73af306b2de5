"""Key names and Lua scripts of the conversations service.

Every key of one conversation carries the hash tag `{conversation_id}` (via `parley.store.Keys`), so each
script below touches one hash slot. The listing indexes and thread keys are single-key writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
        ]

    # Lookups by something other than the conversation (their own slots).
    def message_index(self, message_id: str) -> str:
        return self.keys.message_index(message_id)

    def thread(self, channel: int, brand_account_id: str, platform_thread_id: str) -> str:
        """The conversation of a platform thread (X dm_conversation_id, a Messenger thread)."""
        return self.keys.namespaced("thread", str(channel), brand_account_id, platform_thread_id)

    def awaiting(self, parent_message_id: str) -> str:
        """The conversation a reply opened while its parent was unknown: the parent joins it on arrival."""
        return self.keys.namespaced("awaiting", parent_message_id)

    # Listing indexes: conversation id scored by updated time, and by opened time for metrics.
    def index_all(self) -> str:
        return self.keys.namespaced("convidx", "all")

    def index_state(self, state: int) -> str:
        return self.keys.namespaced("convidx", "state", str(state))

    def index_channel(self, channel: int) -> str:
        return self.keys.namespaced("convidx", "channel", str(channel))

    def index_opened(self) -> str:
        return self.keys.namespaced("convidx", "opened")


# Adds a conversation's messages (idempotent) and keeps its timestamps.
# KEYS: meta, messages, bodies, roles, inbound, texts, transitions
# ARGV: now, channel, brand_account_id, opened_at, new_state, count, then per message 9 values:
#   message_id, sent_at, direction (1 inbound / 2 outbound), role, body, text, author_id, author, is_new
# Returns the conversation's state.
THREAD_SCRIPT = """
local meta = KEYS[1]
local now = ARGV[1]
if redis.call('HSETNX', meta, 'state', ARGV[5]) == 1 then
  redis.call('HSET', meta, 'channel', ARGV[2], 'brand_account_id', ARGV[3], 'opened_at', ARGV[4],
    'updated_at', now)
  redis.call('RPUSH', KEYS[7], cjson.encode({state = tonumber(ARGV[5]), at = tonumber(ARGV[4]),
    reason = 'opened'}))
end
local touched = false
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local mid, sent, dir, role = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local body, text, author_id = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local author, is_new = ARGV[i + 7], ARGV[i + 8]
  i = i + 9
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
return redis.call('HGET', meta, 'state')
"""

# Stores triage and routing per message; the first time a message's outcome is seen it may move the
# conversation (state, intent, topic, team, agent). Replays store the same bytes and move nothing.
# KEYS: meta, triage, routing, applied, transitions
# ARGV: count, then per outcome 10 values:
#   message_id, triage, routing, new_state ('' = unchanged), intent ('' = keep), topic, team, agent, at,
#   bot_reply (1 when the bot answered: a first response)
# Returns {channel, updated_at ('' when nothing was applied), then (message_id, old, new, at) per transition}.
OUTCOME_SCRIPT = """
local meta = KEYS[1]
local changes = {redis.call('HGET', meta, 'channel') or '0', ''}
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local mid, triage, routing, new_state = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local intent, topic, team, agent, at, bot = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
    ARGV[i + 9]
  i = i + 10
  if triage ~= '' then redis.call('HSET', KEYS[2], mid, triage) end
  if routing ~= '' then redis.call('HSET', KEYS[3], mid, routing) end
  if redis.call('HSETNX', KEYS[4], mid, at) == 1 then
    if intent ~= '' then redis.call('HSET', meta, 'intent', intent) end
    if topic ~= '' then redis.call('HSET', meta, 'topic', topic) end
    if team ~= '' then redis.call('HSET', meta, 'team', team) end
    if agent ~= '' then redis.call('HSET', meta, 'agent', agent) end
    if bot == '1' then
      for _, field in ipairs({'first_response_at', 'bot_first_response_at'}) do
        local cur = redis.call('HGET', meta, field)
        if not cur or tonumber(at) < tonumber(cur) then redis.call('HSET', meta, field, at) end
      end
    end
    local old = redis.call('HGET', meta, 'state')
    if new_state ~= '' and old ~= new_state then
      redis.call('HSET', meta, 'state', new_state)
      redis.call('RPUSH', KEYS[5], cjson.encode({state = tonumber(new_state), at = tonumber(at),
        reason = 'routing ' .. mid}))
      table.insert(changes, mid)
      table.insert(changes, old or '0')
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

# The inbound texts of a conversation sent before a time, newest first, at most ARGV[2].
# KEYS: inbound, texts; ARGV: before (exclusive), limit
CONTEXT_SCRIPT = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""
