-- Conversation slot. KEYS: state. ARGV: token, field, value, ...
-- Records an assignment unless the claim was revoked by the recovery of half-done claims, or the conversation
-- is being merged away, or a desk action is moving it (0, unless it is that action's own transfer to an agent,
-- whose reserved capacity is ARGV[1]); 1 recorded.
if redis.call('HGET', KEYS[1], 'revoked') == ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'merging_into') == 1 or redis.call('HEXISTS', KEYS[1], 'merged_into') == 1 then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'leaving') == 1 and redis.call('HGET', KEYS[1], 'leaving_claim') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'claim_token', ARGV[1], unpack(ARGV, 2))
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
