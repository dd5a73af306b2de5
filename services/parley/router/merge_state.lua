-- Conversation slot. KEYS: state. ARGV: priority, sla due, enqueued at ('' to leave one alone), field, value,
-- ... Sets the fields, then keeps the higher priority and the earlier deadline and enqueue time of what is
-- stored and what is given, and moves the version on (so a Route in flight re-reads the state).
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
