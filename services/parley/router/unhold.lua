-- Team slot. KEYS: held. ARGV: conversation id, the entry read. Ends a hold if it is still the one read, so
-- two routers never both report its end. 1 ended, 0 already gone or replaced.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
