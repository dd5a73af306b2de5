-- Team slot. KEYS: queue, since, due, base, held[, mark]. ARGV: conversation id, priority, enqueued at, sla due,
-- mode, hold ("agent|until" or '')[, how long the mark is kept (seconds)].
-- mode "add" puts a conversation in the queue (keeping an earlier enqueue time), reserved for its previous
-- agent when a hold is given (in the same step, so no other agent can take it in between); "raise" only
-- lifts the priority and tightens the deadline of a conversation still waiting (a claimed one stays out).
-- With a mark, "add" happens only the first time the mark is set: a Route decision's entry written again (its
-- decision still pending after a failover that kept the entry) does not put back a conversation taken since.
--#include lift.lua
if ARGV[5] == 'raise' then
  lift(ARGV[1], ARGV[2], ARGV[4])
  return 0
end
if KEYS[6] and not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[7]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if (ARGV[6] or '') ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[6]) end
return 1
