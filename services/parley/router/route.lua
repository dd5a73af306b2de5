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
local into = redis.call('HGET', KEYS[1], 'merged_into') or redis.call('HGET', KEYS[1], 'merging_into')
if into then return {3, into} end
if redis.call('HEXISTS', KEYS[1], 'leaving') == 1 then return {4, ''} end
local version = redis.call('HGET', KEYS[1], 'version') or '0'
if version ~= ARGV[1] then return {2, version} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[6], ARGV[7])
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {0, ''}
