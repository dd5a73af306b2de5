-- Team slot. KEYS: queue, since, due, base. ARGV: conversation id, priority, enqueued at, sla due.
-- Folds another entry into a waiting one: the higher priority, the earlier enqueue time and deadline.
-- Returns 0 when the conversation is not waiting.
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
