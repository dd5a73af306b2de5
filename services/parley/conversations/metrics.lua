-- One conversation's figures for GetMetrics in one call: the record's fields named in ARGV, then how many
-- messages, agents and triage corrections it has.
-- KEYS: meta, messages, agents, corrections
local out = redis.call('HMGET', KEYS[1], unpack(ARGV))
out[#ARGV + 1] = redis.call('ZCARD', KEYS[2])
out[#ARGV + 2] = redis.call('ZCARD', KEYS[3])
out[#ARGV + 3] = redis.call('LLEN', KEYS[4])
return out
