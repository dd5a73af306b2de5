-- Start an attempt: refuse a finished delivery, give up past the attempt limit, else count the attempt.
-- KEYS: delivery. ARGV: now, max attempts.
-- Returns {'missing'} | {'done'} | {'exhausted', n, reply} | {'go', n, reply}.
local v = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'reply')
local s = v[1]
if not s then return {'missing'} end
if s == '${SENT}' or s == '${DEAD_LETTER}' or s == '${BLOCKED}' then return {'done'} end
if tonumber(v[2]) >= tonumber(ARGV[2]) then return {'exhausted', v[2], v[3]} end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
return {'go', n, v[3]}
