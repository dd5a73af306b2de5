-- Desk slot. KEYS: leaving. ARGV: conversation id, the mark's start time.
-- Drops a conversation from the index of desk marks unless a newer mark of it was indexed since.
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
