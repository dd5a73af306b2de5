-- KEYS: seen mark, partition stream. ARGV: mark TTL (s), serialized message, W3C traceparent ("" when not
-- tracing). Returns the entry id, or nil when the mark was already there (a duplicate).
-- Append first, mark "seen" after: a failing XADD (Lua scripts are not rolled back) must not leave a mark
-- that would make the caller's retry a DUPLICATE of a message that was never logged.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id
if ARGV[3] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', 'm', ARGV[2], 't', ARGV[3])
else
  id = redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return id
