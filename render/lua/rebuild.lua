local call, KEYS, ARGV, tonumber, unpack = redis.call, KEYS, ARGV, tonumber, unpack
local cur = call('HGET', KEYS[1], 'version') or ''
if cur ~= ARGV[1] then return -1 end
local v = tonumber(ARGV[2])
if ARGV[3] ~= '1' and (tonumber(cur) or 0) > v then return -2 end
for i = 1, #KEYS do call('DEL', KEYS[i]) end
local i, n, kb = 4, #ARGV, 0
local ix = {}
-- ops.lua
if v > 0 then call('HSET', KEYS[1], 'version', ARGV[2]) end
return 1
