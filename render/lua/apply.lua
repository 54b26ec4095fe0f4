local call, KEYS, ARGV, tonumber, unpack = redis.call, KEYS, ARGV, tonumber, unpack
local v, base = tonumber(ARGV[1]), tonumber(ARGV[2])
local cur = tonumber(call('HGET', KEYS[1], 'version') or '0')
if cur >= v then return 0 end
if cur ~= base then return redis.error_reply('SLBASE ' .. cur) end
local i, n, kb = 3, #ARGV, 0
local ix = {}
-- ops.lua
call('HSET', KEYS[1], 'version', ARGV[1])
return 1
