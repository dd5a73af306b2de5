-- Stores triage and routing per message; the first time a message's outcome is seen it may move the
-- conversation (state, intent, topic, team, agent). Replays store the same bytes and move nothing.
-- KEYS: meta, triage, routing, applied, transitions, agents
-- ARGV: count, then per outcome 11 values:
--   message_id, triage, routing, new_state ('' = unchanged), intent ('' = keep), topic, team, agent, at,
--   bot_reply (1 when the bot answered: a first response), sla_due_at ('' = none)
-- Returns {channel, updated_at ('' when nothing was applied), held, then (message_id, old, new, at) per
-- transition}.
--#include move.lua
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 1 then redis.call('HINCRBY', meta, 'rev', 1) end -- see retire.lua
local head = redis.call('HMGET', meta, 'channel', 'held')
local changes = {head[1] or '0', '', head[2] or ''}
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local mid, triage, routing, new_state = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local intent, topic, team, agent, at, bot = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
    ARGV[i + 9]
  local sla = ARGV[i + 10]
  i = i + 11
  if triage ~= '' then redis.call('HSET', KEYS[2], mid, triage) end
  if routing ~= '' then redis.call('HSET', KEYS[3], mid, routing) end
  if redis.call('HSETNX', KEYS[4], mid, at) == 1 then
    local set = {}
    for field, value in pairs({intent = intent, topic = topic, team = team, agent = agent}) do
      if value ~= '' then table.insert(set, field); table.insert(set, value) end
    end
    if #set > 0 then redis.call('HSET', meta, unpack(set)) end
    if agent ~= '' then redis.call('ZADD', KEYS[6], 'NX', at, agent) end
    if sla ~= '' then redis.call('HSETNX', meta, 'sla_due_at', sla) end
    if bot == '1' then
      for _, field in ipairs({'first_response_at', 'bot_first_response_at'}) do
        local cur = redis.call('HGET', meta, field)
        if not cur or tonumber(at) < tonumber(cur) then redis.call('HSET', meta, field, at) end
      end
    end
    local old = new_state ~= '' and move(meta, KEYS[5], new_state, at, 'routing ' .. mid)
    if old then
      table.insert(changes, mid)
      table.insert(changes, old)
      table.insert(changes, new_state)
      table.insert(changes, at)
    end
    local cur = redis.call('HGET', meta, 'updated_at')
    if not cur or tonumber(at) > tonumber(cur) then
      redis.call('HSET', meta, 'updated_at', at)
      cur = at
    end
    changes[2] = cur
  end
end
return changes
