-- Conversation slot. KEYS: state. ARGV: expected version, ttl, surviving id.
-- The last step of a merge: the merged conversation becomes a pointer to the surviving one, unless a Route
-- changed it since it was read (0: read it again).
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'merged', 'merged_into', ARGV[3], 'agent', '')
redis.call('HDEL', KEYS[1], 'merging_into')
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
