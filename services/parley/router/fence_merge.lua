-- Conversation slot. KEYS: state. ARGV: surviving id, planned action.
-- The first step of a merge: the merged conversation is fenced (`merging_into`), so from now on Route sends
-- its messages to the surviving conversation and no claim records it; refused (0) while a Route decision's
-- effects are still being written (its queue entry would land after the merge moved the others), or while a
-- desk action is moving it (its `leaving` mark: the merge waits for it to finish). Returns
-- {1, surviving id, plan} fenced (the ones of an earlier pass win), {0} pending effects, {2, into} merged.
local state = redis.call('HGETALL', KEYS[1])
for i = 1, #state, 2 do
  if string.sub(state[i], 1, 8) == 'pending:' or state[i] == 'leaving' then return {0} end
end
local merged = redis.call('HGET', KEYS[1], 'merged_into')
if merged then return {2, merged} end
local into = redis.call('HGET', KEYS[1], 'merging_into')
if not into then
  redis.call('HSET', KEYS[1], 'merging_into', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'merge_action', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  into = ARGV[1]
end
return {1, into, redis.call('HGET', KEYS[1], 'merge_action') or ARGV[2]}
