-- Agent slot. KEYS: profile, active. ARGV: token.
-- Reserves one unit of capacity before a conversation is taken: 1 reserved, 0 full, -1 not online.
if redis.call('HGET', KEYS[1], 'presence') ~= 'online' then return -1 end
local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
if redis.call('SCARD', KEYS[2]) >= capacity then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
