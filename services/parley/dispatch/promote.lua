-- Move retries that are due back onto the outbox stream.
-- KEYS: retries, outbox. ARGV: now, limit. Returns how many moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'reply_id', id)
end
return #due
