-- Team slot. KEYS: queue, since, due, base. ARGV: now, points per minute, cap, SLA pressure, first rank, count.
-- Rescores up to `count` waiting conversations, from rank `first rank` in order of arrival: base + min(cap,
-- per minute * minutes waited) + pressure * share of its SLA window gone. Returns {how many were rescored,
-- how many are waiting}, so the caller can go on from where this slice ended or start over.
-- The scores are read and written a thousand members per call (ZMSCORE, ZADD), not one call per member:
-- a call from Lua costs about as much as the work it does here.
local now, rate, cap, pressure = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local first, count = tonumber(ARGV[5]), tonumber(ARGV[6])
local CHUNK = 1000 -- members per call: unpack() has a stack limit
local rescored = 0
for from = first, first + count - 1, CHUNK do
  local last = math.min(from + CHUNK, first + count) - 1
  local entries = redis.call('ZRANGE', KEYS[2], from, last, 'WITHSCORES')
  if #entries == 0 then break end
  local members = {}
  for i = 1, #entries, 2 do members[#members + 1] = entries[i] end
  local bases = redis.call('ZMSCORE', KEYS[4], unpack(members))
  local dues = redis.call('ZMSCORE', KEYS[3], unpack(members))
  local scored = {}
  for j, member in ipairs(members) do
    local base = bases[j]
    if base then
      local since = tonumber(entries[2 * j])
      local due = tonumber(dues[j] or ARGV[1])
      local waited = math.max(0, now - since)
      local score = tonumber(base) + math.min(cap, rate * waited / 60)
      if due > since then score = score + pressure * math.min(1, waited / (due - since)) end
      scored[#scored + 1] = score
      scored[#scored + 1] = member
    end
  end
  if #scored > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(scored)) end
  rescored = rescored + #scored / 2
end
return {rescored, redis.call('ZCARD', KEYS[2])}
