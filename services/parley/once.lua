-- One slot. KEYS[1]: the effect's mark; KEYS[2..]: the keys its commands write (the mark's slot).
-- ARGV[1]: how long the mark is kept (seconds); then the commands (see commands.lua).
-- The commands run only the first time the mark is set: an effect a call may make twice (a desk action
-- finished by the loop while the call that began it stalls, and then goes on) is made once. Returns 1 when
-- they ran, 0 when the effect was made before.
--#include commands.lua
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
run_commands(2)
return 1
