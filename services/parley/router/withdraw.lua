-- Agent slot. KEYS: active, feed. ARGV: conversation id, withdrawn assignment bytes, feed maxlen.
-- Takes a conversation away from the agent and tells their feed in the same step. 1 taken, 0 they did not
-- have it (so a repeat writes nothing twice).
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'assignment', ARGV[2])
return 1
