-- Conversation slot. KEYS: state. ARGV: mark token, field, value, ...
-- The last step of a desk action: its final state replaces the mark, only if the mark is still the one held.
-- The new version, or 0 when the mark is gone (finished or taken over).
if redis.call('HGET', KEYS[1], 'leaving_token') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'leaving', 'leaving_agent', 'leaving_token', 'leaving_at', 'leaving_args',
  'leaving_claim', 'leaving_since')
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
