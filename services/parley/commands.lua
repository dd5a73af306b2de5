-- Runs the commands written in ARGV from position `i` on, each as its word count, its name, the index in
-- KEYS of the key it writes, and its other words (`lua.py` writes them so). The pseudo-command
-- `ONCE <mark> <seconds> <count>` sets the mark (kept that long) if it is not set, and skips the next `count`
-- commands if it was: an effect a call may make twice is made once.
local function run_commands(i)
  local last, skip = #ARGV, 0
  while i <= last do
    local n = tonumber(ARGV[i])
    if skip > 0 then
      skip = skip - 1
    elseif ARGV[i + 1] == 'ONCE' then
      if not redis.call('SET', KEYS[tonumber(ARGV[i + 2])], '1', 'NX', 'EX', ARGV[i + 3]) then
        skip = tonumber(ARGV[i + 4])
      end
    else
      redis.call(ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], unpack(ARGV, i + 3, i + n))
    end
    i = i + n + 1
  end
end
