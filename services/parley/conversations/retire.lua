-- The last step of a merge: the merged conversation becomes a pointer to the one it joined, unless something
-- was written into it since the merge read it (its revision moved: read and copy again). A conversation not
-- written yet becomes a pointer too, so a Thread about to write it finds where to go instead.
-- KEYS: meta, then every other key of the conversation. ARGV: revision read ('' when none), into, ttl.
-- Returns 1 retired, 0 changed since read.
if (redis.call('HGET', KEYS[1], 'rev') or '') ~= ARGV[1] then return 0 end
redis.call('DEL', unpack(KEYS))
redis.call('HSET', KEYS[1], 'merged_into', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
