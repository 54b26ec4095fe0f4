local v = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if cur >= v then return 0 end
local i, n, kb = 2, #ARGV, 0
-- ops.lua
redis.call('HSET', KEYS[1], 'version', ARGV[1])
return 1
