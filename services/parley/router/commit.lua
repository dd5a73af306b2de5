-- Agent slot. KEYS: active, feed. ARGV: token, conversation id, assignment bytes, feed maxlen.
-- Turns the reservation into the assignment and writes it to the agent's feed in one step, so a watcher's
-- snapshot of `active` and its position in the feed always agree.
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[3])
