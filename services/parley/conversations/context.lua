-- The bodies of a conversation's customer turns (the owner's and participants', not the brand's) sent before
-- a time, newest first, at most ARGV[2]. A stored turn is its role, '|', its body; messages stored by earlier
-- versions keep the two apart (legacy roles and bodies), read where `turns` has none.
-- KEYS: messages, turns, legacy roles, legacy bodies; ARGV: before (exclusive), limit
local limit = tonumber(ARGV[2])
local brand = '${PARTICIPANT_ROLE_BRAND}'
local out = {}
local offset = 0
while #out < limit do
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'LIMIT', offset, limit * 2)
  if #ids == 0 then break end
  offset = offset + #ids
  local turns = redis.call('HMGET', KEYS[2], unpack(ids))
  local missing = {}
  for j, id in ipairs(ids) do
    if not turns[j] then table.insert(missing, id) end
  end
  local legacy = {}
  if #missing > 0 then
    local roles = redis.call('HMGET', KEYS[3], unpack(missing))
    local bodies = redis.call('HMGET', KEYS[4], unpack(missing))
    for j, id in ipairs(missing) do
      if roles[j] and bodies[j] then legacy[id] = {roles[j], bodies[j]} end
    end
  end
  for j, id in ipairs(ids) do
    if #out >= limit then break end
    local role, body
    if turns[j] then
      local bar = string.find(turns[j], '|', 1, true)
      role, body = string.sub(turns[j], 1, bar - 1), string.sub(turns[j], bar + 1)
    elseif legacy[id] then
      role, body = legacy[id][1], legacy[id][2]
    end
    if role and role ~= brand then table.insert(out, body) end
  end
end
return out
