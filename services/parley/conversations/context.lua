-- The inbound texts of a conversation sent before a time, newest first, at most ARGV[2].
-- KEYS: inbound, texts; ARGV: before (exclusive), limit
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
