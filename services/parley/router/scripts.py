"""Lua scripts of the router. Each touches one hash slot only (one conversation, team or agent)."""

# Conversation slot. KEYS: state, decision, audit. ARGV: expected version, decision bytes, ttl, audit field,
# audit bytes, field, value, ...
# Stores the decision (and its audit) only if none exists for the message (idempotency) and the state is still
# the version the decision was computed from (so two routers never interleave on one conversation). Returns
# {code, payload}: 0 stored, 1 a decision already existed (payload), 2 the state changed (retry).
ROUTE = """
local existing = redis.call('GET', KEYS[2])
if existing then return {1, existing} end
local version = redis.call('HGET', KEYS[1], 'version') or '0'
if version ~= ARGV[1] then return {2, version} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[3])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {0, ''}
"""

# Conversation slot. KEYS: state. ARGV: field, value, ... Sets fields and moves the version on.
SET_STATE = """
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
"""

# Team slot. KEYS: queue, since, due, base, held. ARGV: conversation id, priority, enqueued at, sla due, mode,
# hold ("agent|until" or '').
# mode "add" puts a conversation in the queue (keeping an earlier enqueue time), reserved for its previous
# agent when a hold is given (in the same step, so no other agent can take it in between); "raise" only
# lifts the priority and tightens the deadline of a conversation still waiting (a claimed one stays out).
ENQUEUE = """
if ARGV[5] == 'raise' then
  local base = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if not base then return 0 end
  local lift = tonumber(ARGV[2]) - tonumber(base)
  if lift > 0 then
    redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
    redis.call('ZINCRBY', KEYS[1], lift, ARGV[1])
  end
  redis.call('ZADD', KEYS[3], 'XX', 'LT', ARGV[4], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if (ARGV[6] or '') ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[6]) end
return 1
"""

# Shared by TAKE and BEST: removes a member from the team's queue keys (and its sticky hold) and, when an
# agent is given, writes the claim journal entry "agent|token|at|base|since|due" in the same step, so a
# claimer that dies before recording the assignment leaves a trace the recovery puts back. `held_for_other`
# tells whether a member is reserved, until a time after `now`, for an agent other than `agent`.
_REMOVE = """
local function held_for_other(member, agent, now)
  local entry = redis.call('HGET', KEYS[6], member)
  if not entry then return false end
  local holder, untl = string.match(entry, '^(.*)|([^|]*)$')
  if tonumber(untl) <= tonumber(now) then return false end
  return holder ~= agent
end
local function remove(member, agent, token, at)
  local base = redis.call('ZSCORE', KEYS[4], member) or '0'
  local since = redis.call('ZSCORE', KEYS[2], member) or '0'
  local due = redis.call('ZSCORE', KEYS[3], member) or '0'
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[4], member)
  redis.call('HDEL', KEYS[6], member)
  if agent ~= '' then
    local entry = table.concat({agent, token, at, base, since, due}, '|')
    redis.call('HSET', KEYS[5], member, entry)
  end
end
"""

# Team slot. KEYS: queue, since, due, base, taking, held. ARGV: conversation id, agent, token, now.
# ZSCORE is the ownership test: exactly one caller removes a given conversation. 1 taken, 0 not waiting, -1
# held for another agent. With no agent (a transfer, escalation or merge moving it) a hold does not stop it.
TAKE = (
    _REMOVE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] ~= '' and held_for_other(ARGV[1], ARGV[2], ARGV[4]) then return -1 end
remove(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)

# Team slot. KEYS: queue, since, due, base, taking, held. ARGV: "peek" or "take", agent, token, now.
# The highest priority not held for another agent; among equals, the longest waiting. "take" also removes
# it, so under contention each caller atomically gets a different conversation. Returns {conversation id,
# priority, enqueued at} or false.
BEST = (
    _REMOVE
    + """
local agent, now = ARGV[2] or '', ARGV[4] or '0'
local best, best_score, best_since = nil, nil, nil
local offset, done = 0, false
while not done do
  local page = redis.call('ZREVRANGE', KEYS[1], offset, offset + 63, 'WITHSCORES')
  if #page == 0 then break end
  for i = 1, #page, 2 do
    local member, score = page[i], page[i + 1]
    if best_score ~= nil and tonumber(score) < tonumber(best_score) then done = true break end
    if not held_for_other(member, agent, now) then
      local since = tonumber(redis.call('ZSCORE', KEYS[2], member) or '0')
      if best == nil or since < best_since or (since == best_since and member < best) then
        best, best_score, best_since = member, score, since
      end
    end
  end
  offset = offset + 64
end
if best == nil then return false end
if ARGV[1] == 'take' then remove(best, agent, ARGV[3] or '', now) end
return {best, best_score, tostring(best_since)}
"""
)

# Team slot. KEYS: held. ARGV: conversation id, the entry read. Ends a hold if it is still the one read, so
# two routers never both report its end. 1 ended, 0 already gone or replaced.
UNHOLD = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

# Agent slot. KEYS: active, feed. ARGV: conversation id, withdrawn assignment bytes, feed maxlen.
# Takes a conversation away from the agent and tells their feed in the same step. 1 taken, 0 they did not
# have it (so a repeat writes nothing twice).
WITHDRAW = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'assignment', ARGV[2])
return 1
"""

# Team slot. KEYS: queue, since, due, base. ARGV: now, points per minute, cap, SLA pressure.
# Rescores every waiting conversation: base + min(cap, per minute * minutes waited) + pressure * share of
# its SLA window gone. Returns how many were rescored.
AGE = """
local entries = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
local now, rate, cap, pressure = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #entries, 2 do
  local member, base = entries[i], tonumber(entries[i + 1])
  local since = tonumber(redis.call('ZSCORE', KEYS[2], member) or ARGV[1])
  local due = tonumber(redis.call('ZSCORE', KEYS[3], member) or ARGV[1])
  local waited = math.max(0, now - since)
  local score = base + math.min(cap, rate * waited / 60)
  if due > since then score = score + pressure * math.min(1, waited / (due - since)) end
  redis.call('ZADD', KEYS[1], 'XX', score, member)
end
return #entries / 2
"""

# Conversation slot. KEYS: state. ARGV: token, field, value, ...
# Records an assignment unless the claim was revoked by the recovery of half-done claims (0); 1 recorded.
ASSIGN = """
if redis.call('HGET', KEYS[1], 'revoked') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'claim_token', ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""

# Conversation slot. KEYS: state. ARGV: token, agent.
# Settles a stale claim journal entry: 1 if the claimer recorded the assignment, else the claim is revoked
# (a late ASSIGN with that token is refused) and 0 is returned, so the conversation goes back to its queue.
REVOKE = """
local state = redis.call('HMGET', KEYS[1], 'state', 'agent', 'claim_token')
if state[1] == 'assigned' and state[2] == ARGV[2] and state[3] == ARGV[1] then return 1 end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
return 0
"""

# Agent slot. KEYS: profile, active. ARGV: token.
# Reserves one unit of capacity before a conversation is taken: 1 reserved, 0 full, -1 not online.
RESERVE = """
if redis.call('HGET', KEYS[1], 'presence') ~= 'online' then return -1 end
local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
if redis.call('SCARD', KEYS[2]) >= capacity then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# Agent slot. KEYS: active, feed. ARGV: token, conversation id, assignment bytes, feed maxlen.
# Turns the reservation into the assignment and writes it to the agent's feed in one step, so a watcher's
# snapshot of `active` and its position in the feed always agree.
COMMIT = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[3])
"""

# Team slot. KEYS: queue, since, due, base, taking. ARGV: conversation id, journal entry, restore (1/0).
# Closes a claim journal entry if it is still the one read (so two recoveries never both act on it); with
# restore, the conversation goes back in the queue with the priority, enqueue time and deadline it had.
SETTLE = """
if redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[3] == '1' then
  local parts = {}
  for part in string.gmatch(ARGV[2], '[^|]+') do parts[#parts + 1] = part end
  local n = #parts
  redis.call('ZADD', KEYS[1], parts[n - 2], ARGV[1])
  redis.call('ZADD', KEYS[4], parts[n - 2], ARGV[1])
  redis.call('ZADD', KEYS[2], 'NX', parts[n - 1], ARGV[1])
  redis.call('ZADD', KEYS[3], parts[n], ARGV[1])
end
return 1
"""

# Merges (a reply held in a conversation of its own joins its parent's). Each step is safe to repeat.

# Team slot. KEYS: queue, since, due, base. ARGV: conversation id, priority, enqueued at, sla due.
# Folds another entry into a waiting one: the higher priority, the earlier enqueue time and deadline.
# Returns 0 when the conversation is not waiting.
JOIN = """
local base = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not base then return 0 end
local lift = tonumber(ARGV[2]) - tonumber(base)
if lift > 0 then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('ZINCRBY', KEYS[1], lift, ARGV[1])
end
redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', 'LT', ARGV[4], ARGV[1])
return 1
"""

# Conversation slot. KEYS: state. ARGV: priority, sla due, enqueued at ('' to leave one alone), field, value,
# ... Sets the fields, then keeps the higher priority and the earlier deadline and enqueue time of what is
# stored and what is given, and moves the version on (so a Route in flight re-reads the state).
MERGE_STATE = """
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local function keep(name, value, higher)
  if value == '' then return end
  local current = tonumber(redis.call('HGET', KEYS[1], name) or '')
  local given = tonumber(value)
  if current and ((higher and current >= given) or (not higher and current <= given)) then return end
  redis.call('HSET', KEYS[1], name, value)
end
keep('priority', ARGV[1], true)
keep('sla_due', ARGV[2], false)
keep('enqueued_at', ARGV[3], false)
return redis.call('HINCRBY', KEYS[1], 'version', 1)
"""

# Agent slot. KEYS: active, feed. ARGV: merged id, surviving id, assignment bytes, feed maxlen, withdrawn
# assignment bytes (of the merged id).
# The agent's merged conversation becomes the surviving one: capacity counts it once, and the feed shows the
# merged conversation withdrawn and the surviving one assigned (once: a repeat finds it active already).
# 1 moved, 0 already moved, -1 the agent no longer has the merged conversation.
SWAP = """
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 0
end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[3])
return 1
"""

# Conversation slot. KEYS: state. ARGV: expected version, ttl, surviving id.
# The last step of a merge: the merged conversation becomes a pointer to the surviving one, unless a Route
# changed it since it was read (0: read it again).
FINALIZE_MERGE = """
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'merged', 'merged_into', ARGV[3], 'agent', '')
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
