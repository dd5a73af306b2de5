-- Create the delivery and queue it, unless the reply_id is known: then return the existing record.
-- KEYS: delivery, outbox. ARGV: reply_id, reply bytes, status, error, now, channel, visibility, retention,
-- private reply id.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HMGET', KEYS[1], ${FIELDS})}
end
redis.call('HSET', KEYS[1], 'reply', ARGV[2], 'status', ARGV[3], 'attempts', '0', 'error', ARGV[4],
  'created_at', ARGV[5], 'updated_at', ARGV[5], 'channel', ARGV[6], 'visibility', ARGV[7], 'ids', '[]',
  'private_reply_id', ARGV[9])
if ARGV[3] == '${PENDING}' then
  redis.call('XADD', KEYS[2], '*', 'reply_id', ARGV[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
return {1}
