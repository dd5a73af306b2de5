"""Lua scripts of the router. Each touches one hash slot only (one conversation, team or agent)."""

# Conversation slot. KEYS: state, decision. ARGV: expected version, decision bytes, ttl, field, value, ...
# Stores the decision only if none exists for the message (idempotency) and the state is still the version the
# decision was computed from (so two routers never interleave on one conversation). Returns {code, payload}:
# 0 stored, 1 a decision already existed (payload), 2 the state changed (retry).
ROUTE = """
local existing = redis.call('GET', KEYS[2])
if existing then return {1, existing} end
local version = redis.call('HGET', KEYS[1], 'version') or '0'
if version ~= ARGV[1] then return {2, version} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {0, ''}
"""

# Conversation slot. KEYS: state. ARGV: field, value, ... Sets fields and moves the version on.
SET_STATE = """
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
"""

# Team slot. KEYS: queue, since, due. ARGV: conversation id, priority, enqueued at, sla due, mode.
# mode "add" puts a conversation in the queue (keeping an earlier enqueue time); "raise" only lifts the
# priority and tightens the deadline of a conversation still waiting (a claimed one is not put back).
ENQUEUE = """
if ARGV[5] == 'raise' then
  redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[3], 'XX', 'LT', ARGV[4], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# Team slot. KEYS: queue, since, due. ARGV: conversation id.
# ZREM is the ownership test: exactly one caller removes a given conversation.
TAKE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# Team slot. KEYS: queue, since, due. ARGV: "peek" or "take".
# The highest priority; among equals, the longest waiting. "take" also removes it, so under contention each
# caller atomically gets a different conversation. Returns {conversation id, priority, enqueued at} or false.
BEST = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
local same = redis.call('ZRANGEBYSCORE', KEYS[1], top[2], top[2], 'LIMIT', 0, 64)
local best, best_since = top[1], nil
for _, member in ipairs(same) do
  local since = tonumber(redis.call('ZSCORE', KEYS[2], member) or '0')
  if best_since == nil or since < best_since then best, best_since = member, since end
end
if ARGV[1] == 'take' then
  redis.call('ZREM', KEYS[1], best)
  redis.call('ZREM', KEYS[2], best)
  redis.call('ZREM', KEYS[3], best)
end
return {best, top[2], tostring(best_since or 0)}
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
