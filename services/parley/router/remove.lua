-- Shared by TAKE and BEST: removes a member from the team's queue keys (and its sticky hold) and, when an
-- agent is given, writes the claim journal entry "agent|token|at|base|since|due" in the same step, so a
-- claimer that dies before recording the assignment leaves a trace the recovery puts back. `held_for_other`
-- tells whether a member is reserved, until a time after `now`, for an agent other than `agent`.
local function held_for_other(member, agent, now)
  local entry = redis.call('HGET', KEYS[6], member)
  if not entry then return false end
  local holder, untl = string.match(entry, '^(.*)|([^|]*)$')
  if tonumber(untl) <= tonumber(now) then return false end
  return holder ~= agent
end
local function remove(member, agent, token, at)
  local base = redis.call('ZSCORE', KEYS[4], member) or '0'
  local since = redis.call('ZSCORE', KEYS[2], member) or '0'
  local due = redis.call('ZSCORE', KEYS[3], member) or '0'
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[4], member)
  redis.call('HDEL', KEYS[6], member)
  if agent ~= '' then
    local entry = table.concat({agent, token, at, base, since, due}, '|')
    redis.call('HSET', KEYS[5], member, entry)
  end
end
