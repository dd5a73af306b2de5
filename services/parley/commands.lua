-- Runs the commands written in ARGV from position `i` on, each as its word count, its name, the index in
-- KEYS of the key it writes, and its other words (`lua.py` writes them so).
local function run_commands(i)
  local last = #ARGV
  while i <= last do
    local n = tonumber(ARGV[i])
    redis.call(ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], unpack(ARGV, i + 3, i + n))
    i = i + n + 1
  end
end
