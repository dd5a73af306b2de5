-- One slot. KEYS[1]: the effect's mark; KEYS[2..]: the keys its commands write (the mark's slot).
-- ARGV[1]: how long the mark is kept (seconds); then each command as its word count, its name, the index in
-- KEYS of the key it writes, and its other words.
-- The commands run only the first time the mark is set: an effect a call may make twice (a desk action
-- finished by the loop while the call that began it stalls, and then goes on) is made once. Returns 1 when
-- they ran, 0 when the effect was made before.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local words = {ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])]}
  for j = 3, n do words[j] = ARGV[i + j] end
  redis.call(unpack(words))
  i = i + n + 1
end
return 1
