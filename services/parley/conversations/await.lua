-- A reply whose parent is unknown waits for it, unless the parent was threaded meanwhile: checked in the
-- same step as the wait is registered (both keys share the parent's hash slot, see claim.lua).
-- KEYS: message index of the parent, awaiting key of the parent. ARGV: the reply's conversation id, ttl.
-- Returns {'parent', the parent's conversation} or {'waiting', the conversation that waits first}.
local parent = redis.call('GET', KEYS[1])
if parent then return {'parent', parent} end
local first = redis.call('GET', KEYS[2])
if first then return {'waiting', first} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return {'waiting', ARGV[1]}
