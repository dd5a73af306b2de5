-- Conversation slot. KEYS: state, decision, audit. ARGV: expected version, decision bytes, ttl, audit field,
-- audit bytes, pending field, decided at, field, value, ...
-- Stores the decision (and its audit) only if none exists for the message (idempotency), the state is still
-- the version the decision was computed from (so two routers never interleave on one conversation) and the
-- conversation is not being merged away, nor moved by a desk action (its `leaving` mark: the message is decided
-- against the state the action leaves). The decision is marked pending in the state until its effects (queue
-- entry, event) are written, so a merge waits for them. Returns {code, payload}: 0 stored, 1 a decision already
-- existed (payload), 2 the state changed (retry), 3 merged or being merged (payload: the surviving id), 4 a desk
-- action is moving it (retry once it is finished).
local existing = redis.call('GET', KEYS[2])
if existing then return {1, existing} end
local state = redis.call('HMGET', KEYS[1], 'merged_into', 'merging_into', 'leaving', 'version')
local into = state[1] or state[2]
if into then return {3, into} end
if state[3] then return {4, ''} end
local version = state[4] or '0'
if version ~= ARGV[1] then return {2, version} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 6)) -- the pending mark, then the decision's fields
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {0, ''}
