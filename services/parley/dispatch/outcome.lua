-- Record an attempt's outcome, then ack and drop the stream entry (one consumer group: nothing else needs it).
-- KEYS: delivery, outbox, retries, dead. ARGV: kind (sent|retry|dead|blocked|ack), entry id, group, now,
-- reply_id, ids JSON or error, retry due time, retention, dead-letter JSON. Returns the kind applied.
local s = redis.call('HGET', KEYS[1], 'status')
local kind = ARGV[1]
if not s or (s == '${SENT}' and kind ~= 'sent') then kind = 'ack' end
if kind == 'sent' then
  redis.call('HSET', KEYS[1], 'status', '${SENT}', 'ids', ARGV[6], 'error', '', 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('EXPIRE', KEYS[1], ARGV[8])
elseif kind == 'retry' then
  redis.call('HSET', KEYS[1], 'status', '${RETRYING}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', ARGV[7])
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[5])
elseif kind == 'dead' then
  redis.call('HSET', KEYS[1], 'status', '${DEAD_LETTER}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('RPUSH', KEYS[4], ARGV[9])
  redis.call('EXPIRE', KEYS[1], ARGV[8])
elseif kind == 'blocked' then
  redis.call('HSET', KEYS[1], 'status', '${BLOCKED}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return kind
