-- Team slot. KEYS: queue, since, due, base, taking. ARGV: conversation id, journal entry, restore (1/0).
-- Closes a claim journal entry if it is still the one read (so two recoveries never both act on it); with
-- restore, the conversation goes back in the queue with the priority, enqueue time and deadline it had.
if redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[3] == '1' then
  local parts = {}
  for part in string.gmatch(ARGV[2], '[^|]+') do parts[#parts + 1] = part end
  local n = #parts
  redis.call('ZADD', KEYS[1], parts[n - 2], ARGV[1])
  redis.call('ZADD', KEYS[4], parts[n - 2], ARGV[1])
  redis.call('ZADD', KEYS[2], 'NX', parts[n - 1], ARGV[1])
  redis.call('ZADD', KEYS[3], parts[n], ARGV[1])
end
return 1
