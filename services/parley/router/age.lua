-- Team slot. KEYS: queue, since, due, base. ARGV: now, points per minute, cap, SLA pressure.
-- Rescores every waiting conversation: base + min(cap, per minute * minutes waited) + pressure * share of
-- its SLA window gone. Returns how many were rescored.
local entries = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
local now, rate, cap, pressure = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #entries, 2 do
  local member, base = entries[i], tonumber(entries[i + 1])
  local since = tonumber(redis.call('ZSCORE', KEYS[2], member) or ARGV[1])
  local due = tonumber(redis.call('ZSCORE', KEYS[3], member) or ARGV[1])
  local waited = math.max(0, now - since)
  local score = base + math.min(cap, rate * waited / 60)
  if due > since then score = score + pressure * math.min(1, waited / (due - since)) end
  redis.call('ZADD', KEYS[1], 'XX', score, member)
end
return #entries / 2
