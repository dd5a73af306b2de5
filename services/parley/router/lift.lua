-- Shared by raise.lua and join.lua. KEYS: queue, since, due, base (the team's queue keys).
-- Lifts a waiting member to `priority` when that is higher (its score keeps the ageing it earned) and
-- tightens its deadline; false when the member is not waiting.
local function lift(member, priority, due)
  local base = redis.call('ZSCORE', KEYS[4], member)
  if not base then return false end
  local by = tonumber(priority) - tonumber(base)
  if by > 0 then
    redis.call('ZADD', KEYS[4], priority, member)
    redis.call('ZINCRBY', KEYS[1], by, member)
  end
  redis.call('ZADD', KEYS[3], 'XX', 'LT', due, member)
  return true
end
