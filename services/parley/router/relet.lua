-- Conversation slot. KEYS: state. ARGV: token read, new token, at.
-- Whoever finishes a desk action's mark takes it over first, so two finishers (a retry and the loop) never
-- both write its effects. 1 taken over, 0 someone else took it or finished it.
if redis.call('HGET', KEYS[1], 'leaving_token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'leaving_token', ARGV[2], 'leaving_at', ARGV[3])
return 1
