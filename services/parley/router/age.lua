-- Team slot. KEYS: queue, since, due, base. ARGV: now, points per minute, cap, SLA pressure, first rank, count.
-- Rescores up to `count` waiting conversations, from rank `first rank` in order of arrival: base + min(cap,
-- per minute * minutes waited) + pressure * share of its SLA window gone. Returns {how many were rescored,
-- how many are waiting}, so the caller can go on from where this slice ended or start over.
local now, rate, cap, pressure = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local first = tonumber(ARGV[5])
local entries = redis.call('ZRANGE', KEYS[2], first, first + tonumber(ARGV[6]) - 1, 'WITHSCORES')
local rescored = 0
for i = 1, #entries, 2 do
  local member, since = entries[i], tonumber(entries[i + 1])
  local base = redis.call('ZSCORE', KEYS[4], member)
  if base then
    local due = tonumber(redis.call('ZSCORE', KEYS[3], member) or ARGV[1])
    local waited = math.max(0, now - since)
    local score = tonumber(base) + math.min(cap, rate * waited / 60)
    if due > since then score = score + pressure * math.min(1, waited / (due - since)) end
    redis.call('ZADD', KEYS[1], 'XX', score, member)
    rescored = rescored + 1
  end
end
return {rescored, redis.call('ZCARD', KEYS[2])}
