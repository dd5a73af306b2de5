-- Runs the commands written in ARGV from position `i` on, each as its word count, its name, the index in
-- KEYS of the key it writes, and its other words (`lua.py` writes them so).
local function run_commands(i)
  while i <= #ARGV do
    local n = tonumber(ARGV[i])
    local words = {ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])]}
    for j = 3, n do words[j] = ARGV[i + j] end
    redis.call(unpack(words))
    i = i + n + 1
  end
end
