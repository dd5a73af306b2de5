-- Applies one lifecycle event from another service, once per event id.
-- KEYS: meta, transitions, events_applied, agents
-- ARGV: event_id, new_state ('' = none), at, reason, agent ('' = none), team ('' = keep),
--   human_reply (1: a reply an agent sent, a first human response), bot_reply (1)
-- Returns {'merged', conversation_id} when the conversation was merged into another, {} when there is no
-- such conversation or the event was applied already, else {'ok', old, new} ({'ok'} when the state held).
--#include move.lua
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then return {} end
local into = redis.call('HGET', meta, 'merged_into')
if into then return {'merged', into} end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return {} end
redis.call('HINCRBY', meta, 'rev', 1) -- see retire.lua
local at = ARGV[3]
if ARGV[5] ~= '' then
  redis.call('HSET', meta, 'agent', ARGV[5])
  redis.call('ZADD', KEYS[4], 'NX', at, ARGV[5])
end
if ARGV[6] ~= '' then redis.call('HSET', meta, 'team', ARGV[6]) end
local first = redis.call('HGET', meta, 'first_inbound_at')
local human_reply = ARGV[7] == '1'
local fields = {}
if human_reply then fields = {'first_response_at', 'human_first_response_at'} end
if ARGV[8] == '1' then fields = {'first_response_at', 'bot_first_response_at'} end
if first and tonumber(at) >= tonumber(first) then
  for _, field in ipairs(fields) do
    local cur = redis.call('HGET', meta, field)
    if not cur or tonumber(at) < tonumber(cur) then redis.call('HSET', meta, field, at) end
  end
end
local cur = redis.call('HGET', meta, 'updated_at')
if not cur or tonumber(at) > tonumber(cur) then redis.call('HSET', meta, 'updated_at', at) end
if ARGV[2] == '' then return {'ok'} end
-- A reply sent after the conversation closed (a sign-off) does not open it again.
local state = redis.call('HGET', meta, 'state')
if human_reply and (state == '${STATE_RESOLVED}' or state == '${STATE_CLOSED_NO_ACTION}') then return {'ok'} end
local old = move(meta, KEYS[2], ARGV[2], at, ARGV[4])
if not old then return {'ok'} end
return {'ok', old, ARGV[2]}
