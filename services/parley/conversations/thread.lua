-- Adds a conversation's messages (idempotent) and keeps its timestamps. A new customer turn of the owner
-- moves a conversation waiting on them back to its agent (or queue) and reopens a resolved one.
-- KEYS: meta, messages, turns, transitions
-- ARGV: now, channel, brand_account_id, opened_at, new_state, count, awaited parent (a message id opens it
--   held, waiting for that parent; '' not held), previous
--   conversation id, owner person, thread key, then per message 9 values:
--   message_id, sent_at, direction (inbound or outbound), role, body, author_id, author, is_new (1),
--   visibility
-- A message is stored once, in `turns`: its role, '|', its body (context.lua reads its text from there).
-- The states, the owner's role, directions and visibilities compared with are enum numbers that scripts.py
-- fills in.
-- Returns {state, held ('1' or ''), the id of the message that moved it to private or '', then
--   (old, new, at) per transition}, or {'merged', conversation id} when the conversation was merged into
--   another (nothing is written: the caller threads the messages there).
--#include move.lua
local meta = KEYS[1]
local into = redis.call('HGET', meta, 'merged_into')
if into then return {'merged', into} end
redis.call('HINCRBY', meta, 'rev', 1)
local now = ARGV[1]
local changes = {}
if redis.call('HSETNX', meta, 'state', ARGV[5]) == 1 then
  redis.call('HSET', meta, 'channel', ARGV[2], 'brand_account_id', ARGV[3], 'opened_at', ARGV[4],
    'updated_at', now)
  if ARGV[7] ~= '' then redis.call('HSET', meta, 'held', '1', 'awaits', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSET', meta, 'previous', ARGV[8]) end
  if ARGV[9] ~= '' then redis.call('HSET', meta, 'owner_person', ARGV[9]) end
  redis.call('RPUSH', KEYS[4], cjson.encode({state = tonumber(ARGV[5]), at = tonumber(ARGV[4]),
    reason = 'opened'}))
end
if ARGV[10] ~= '' then redis.call('HSETNX', meta, 'thread_key', ARGV[10]) end
local moved = ''
local touched = false
local i = 11
for _ = 1, tonumber(ARGV[6]) do
  local mid, sent, dir, role = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local body, author_id, author = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local is_new, visibility = ARGV[i + 7], ARGV[i + 8]
  i = i + 9
  local fresh = is_new == '1'
  if visibility == '${VISIBILITY_PUBLIC}' then
    redis.call('HSET', meta, 'public', '1')
  elseif visibility == '${VISIBILITY_PRIVATE}' and redis.call('HGET', meta, 'public') then -- it was public
    if redis.call('HSETNX', meta, 'moved_to_private', mid) == 1 then moved = mid end
  end
  if fresh and dir == '${DIRECTION_INBOUND}' and role == '${PARTICIPANT_ROLE_OWNER}' then
    local state = redis.call('HGET', meta, 'state')
    local to, reason = nil, nil
    if state == '${STATE_WAITING_ON_CUSTOMER}' then
      to = redis.call('HGET', meta, 'agent') and '${STATE_ASSIGNED}' or '${STATE_QUEUED}'
      reason = 'customer replied ' .. mid
    elseif state == '${STATE_RESOLVED}' then
      to = '${STATE_REOPENED}'
      reason = 'customer came back ' .. mid
    end
    if to then
      local old = move(meta, KEYS[4], to, now, reason)
      if old then table.insert(changes, old); table.insert(changes, to); table.insert(changes, now) end
    end
  end
  redis.call('ZADD', KEYS[2], sent, mid)
  redis.call('HSET', KEYS[3], mid, role .. '|' .. body)
  if fresh then touched = true end
  local t = tonumber(sent)
  if dir == '${DIRECTION_INBOUND}' then
    if author_id ~= '' and redis.call('HSETNX', meta, 'owner', author_id) == 1 then
      redis.call('HSET', meta, 'owner_author', author)
    end
    local first = redis.call('HGET', meta, 'first_inbound_at')
    if not first or t < tonumber(first) then redis.call('HSET', meta, 'first_inbound_at', sent) end
  else
    -- First response: the earliest brand message after the first customer message.
    local first = redis.call('HGET', meta, 'first_inbound_at')
    if first and t >= tonumber(first) then
      for _, field in ipairs({'first_response_at', 'human_first_response_at'}) do
        local cur = redis.call('HGET', meta, field)
        if not cur or t < tonumber(cur) then redis.call('HSET', meta, field, sent) end
      end
    end
  end
end
local tail = redis.call('HMGET', meta, 'state', 'held', 'updated_at')
if touched and (not tail[3] or tonumber(now) > tonumber(tail[3])) then
  redis.call('HSET', meta, 'updated_at', now)
end
local out = {tail[1], tail[2] or '', moved}
for _, v in ipairs(changes) do table.insert(out, v) end
return out
