-- Conversation slot. KEYS: state. ARGV: expected version, action, agent, token, at, args (JSON), claim token.
-- The first step of a desk action: its intent is recorded in the state (the `leaving` fields) before anything
-- else moves, so a router that dies half-way leaves a mark a retry or the loop finishes. Returns {code,
-- payload}: 0 marked, 1 another action's mark is there (payload: its action), 2 the state changed since it
-- was read (read again), 3 merged or being merged (payload: the surviving id).
local into = redis.call('HGET', KEYS[1], 'merged_into') or redis.call('HGET', KEYS[1], 'merging_into')
if into then return {3, into} end
local leaving = redis.call('HGET', KEYS[1], 'leaving')
if leaving then return {1, leaving} end
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return {2, ''} end
redis.call('HSET', KEYS[1], 'leaving', ARGV[2], 'leaving_agent', ARGV[3], 'leaving_token', ARGV[4],
  'leaving_at', ARGV[5], 'leaving_since', ARGV[5], 'leaving_args', ARGV[6], 'leaving_claim', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {0, ''}
