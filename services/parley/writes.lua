-- Plain writes of one slot (one server: any keys), sent as one call. KEYS: the keys they write; ARGV: the
-- commands (see commands.lua). Returns how many keys were named.
--#include commands.lua
run_commands(1)
return #KEYS
