-- Agent slot. KEYS: active, feed. ARGV: merged id, surviving id, assignment bytes, feed maxlen, withdrawn
-- assignment bytes (of the merged id).
-- The agent's merged conversation becomes the surviving one: capacity counts it once, and the feed shows the
-- merged conversation withdrawn and the surviving one assigned (once: a repeat finds it active already).
-- 1 moved, 0 already moved, -1 the agent no longer has the merged conversation.
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 0
end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'assignment', ARGV[3])
return 1
