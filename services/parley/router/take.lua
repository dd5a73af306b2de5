-- Team slot. KEYS: queue, since, due, base, taking, held. ARGV: conversation id, agent, token, now.
-- ZSCORE is the ownership test: exactly one caller removes a given conversation. 1 taken, 0 not waiting, -1
-- held for another agent. With no agent (a transfer, escalation or merge moving it) a hold does not stop it.
--#include remove.lua
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] ~= '' and held_for_other(ARGV[1], ARGV[2], ARGV[4]) then return -1 end
remove(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
