-- Plain writes of one slot (one server: any keys), and effects made once behind their marks, sent as one call.
-- KEYS: the keys they write and the marks; ARGV: the commands (see commands.lua). Returns how many keys were
-- named.
--#include commands.lua
run_commands(1)
return #KEYS
