-- Conversation slot. KEYS: state. ARGV: field, value, ... Sets fields and moves the version on.
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
