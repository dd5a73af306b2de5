-- Agent slot. KEYS: active. ARGV: reservation token.
-- Gives back a reservation whose claimer died before writing its claim journal (only the token goes: a
-- conversation the agent holds is never touched). 1 released, 0 gone already (committed or released).
return redis.call('SREM', KEYS[1], ARGV[1])
