-- Conversation slot. KEYS: state. ARGV: expected version ('' for any), priority, sla due, enqueued at ('' to
-- leave one alone), field, value, ...
-- Sets the fields, then keeps the higher priority and the earlier deadline and enqueue time of what is
-- stored and what is given, and moves the version on (so a Route in flight re-reads the state). Refused (0)
-- when the state is no longer the version the merge read, a Route decision's effects are still pending, or a
-- desk action is moving the conversation (its `leaving` mark).
if ARGV[1] ~= '' then
  if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
  local state = redis.call('HKEYS', KEYS[1])
  for i = 1, #state do
    if string.sub(state[i], 1, 8) == 'pending:' or state[i] == 'leaving' then return 0 end
  end
end
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
local function keep(name, value, higher)
  if value == '' then return end
  local current = tonumber(redis.call('HGET', KEYS[1], name) or '')
  local given = tonumber(value)
  if current and ((higher and current >= given) or (not higher and current <= given)) then return end
  redis.call('HSET', KEYS[1], name, value)
end
keep('priority', ARGV[2], true)
keep('sla_due', ARGV[3], false)
keep('enqueued_at', ARGV[4], false)
return redis.call('HINCRBY', KEYS[1], 'version', 1)
