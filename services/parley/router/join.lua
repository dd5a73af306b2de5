-- Team slot. KEYS: queue, since, due, base. ARGV: conversation id, priority, enqueued at, sla due.
-- Folds another entry into a waiting one: the higher priority, the earlier enqueue time and deadline.
-- Returns 0 when the conversation is not waiting.
--#include lift.lua
if not lift(ARGV[1], ARGV[2], ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[3], ARGV[1])
return 1
