-- Team slot. KEYS: queue, since, due, base, taking, held. ARGV: "peek" or "take", agent, token, now.
-- The highest priority not held for another agent; among equals, the longest waiting. "take" also removes
-- it, so under contention each caller atomically gets a different conversation. Returns {conversation id,
-- priority, enqueued at} or false.
--#include remove.lua
local agent, now = ARGV[2] or '', ARGV[4] or '0'
local best, best_score, best_since = nil, nil, nil
local offset, done = 0, false
while not done do
  local page = redis.call('ZREVRANGE', KEYS[1], offset, offset + 63, 'WITHSCORES')
  if #page == 0 then break end
  for i = 1, #page, 2 do
    local member, score = page[i], page[i + 1]
    if best_score ~= nil and tonumber(score) < tonumber(best_score) then done = true break end
    if not held_for_other(member, agent, now) then
      local since = tonumber(redis.call('ZSCORE', KEYS[2], member) or '0')
      if best == nil or since < best_since or (since == best_since and member < best) then
        best, best_score, best_since = member, score, since
      end
    end
  end
  offset = offset + 64
end
if best == nil then return false end
if ARGV[1] == 'take' then remove(best, agent, ARGV[3] or '', now) end
return {best, best_score, tostring(best_since)}
