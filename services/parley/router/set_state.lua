-- Conversation slot. KEYS: state. ARGV: field, value, ... Sets fields and moves the version on.
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
