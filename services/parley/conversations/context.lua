-- The bodies of a conversation's customer turns (the owner's and participants', not the brand's) sent before
-- a time, newest first, at most ARGV[2]. Roles tell the turns apart: the text is stored only in the body.
-- KEYS: messages, roles, bodies; ARGV: before (exclusive), limit
local limit = tonumber(ARGV[2])
local out = {}
local offset = 0
while #out < limit do
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'LIMIT', offset, limit * 2)
  if #ids == 0 then break end
  offset = offset + #ids
  local roles = redis.call('HMGET', KEYS[2], unpack(ids))
  local turns = {}
  for j, id in ipairs(ids) do
    if roles[j] and roles[j] ~= '${PARTICIPANT_ROLE_BRAND}' and #out + #turns < limit then
      table.insert(turns, id)
    end
  end
  if #turns > 0 then
    for _, body in ipairs(redis.call('HMGET', KEYS[3], unpack(turns))) do
      if body then table.insert(out, body) end
    end
  end
end
return out
