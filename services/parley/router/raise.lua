-- Team slot. KEYS: queue, since, due, base. ARGV: conversation id, priority, sla due.
-- Lifts the priority and tightens the deadline of a conversation still waiting (a claimed one stays out): safe
-- to repeat. (A conversation is put in a queue by plain writes, `Queues.add_on`.)
--#include lift.lua
lift(ARGV[1], ARGV[2], ARGV[3])
return 0
