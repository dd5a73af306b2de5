-- Agent slot. KEYS: active, feed, the assignment's mark. ARGV: token, conversation id, assignment bytes, feed
-- maxlen, how long the mark is kept (seconds).
-- Turns the reservation into the assignment and writes it to the agent's feed in one step, so a watcher's
-- snapshot of `active` and its position in the feed always agree. The feed gets each assignment (each claim
-- token) once: a call recording it again (a desk transfer finished by the loop while the call that began it
-- stalled) changes nothing.
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[1], ARGV[2])
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[5]) then return false end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[3])
