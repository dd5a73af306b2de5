-- Moves a conversation to a new state, keeping the handling time (time assigned to an agent), the last
-- resolution time and the reopen count. Shared by the scripts below. The states are
-- ConversationState numbers that scripts.py fills in.
local function move(meta, transitions, new, at, reason)
  local old = redis.call('HGET', meta, 'state') or '${STATE_UNSPECIFIED}'
  if old == new then return nil end
  local t = tonumber(at)
  if old == '${STATE_ASSIGNED}' then
    local since = tonumber(redis.call('HGET', meta, 'work_since') or at)
    if t > since then redis.call('HINCRBYFLOAT', meta, 'handling', t - since) end
  end
  if new == '${STATE_ASSIGNED}' then redis.call('HSET', meta, 'work_since', at) end
  if new == '${STATE_RESOLVED}' then redis.call('HSET', meta, 'resolved_at', at) end
  if new == '${STATE_REOPENED}' then redis.call('HINCRBY', meta, 'reopen_count', 1) end
  redis.call('HSET', meta, 'state', new)
  redis.call('RPUSH', transitions, cjson.encode({state = tonumber(new), at = t, reason = reason}))
  return old
end
