-- Conversation slot. KEYS: state. ARGV: token, agent.
-- Settles a stale claim journal entry: 1 if the claimer recorded the assignment, else the claim is revoked
-- (a late ASSIGN with that token is refused) and 0 is returned, so the conversation goes back to its queue.
local state = redis.call('HMGET', KEYS[1], 'state', 'agent', 'claim_token')
if state[1] == 'assigned' and state[2] == ARGV[2] and state[3] == ARGV[1] then return 1 end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
return 0
