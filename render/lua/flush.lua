local tenants, ck = KEYS[#KEYS-1], KEYS[#KEYS]
local i, kb = 3, 0
for t = 1, tonumber(ARGV[2]) do
  local nkeys, vs, tid = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+2]
  local n = i + 3 + tonumber(ARGV[i+3])
  i = i + 4
  local cur = tonumber(redis.call('HGET', KEYS[kb+1], 'version') or '0')
  if cur < tonumber(vs) then
-- ops.lua
    redis.call('HSET', KEYS[kb+1], 'version', vs)
  end
  i = n + 1
  if tid ~= '' then redis.call('SADD', tenants, tid) end
  kb = kb + nkeys
end
local pos = tonumber(ARGV[1])
if pos > tonumber(redis.call('GET', ck) or '0') then redis.call('SET', ck, ARGV[1]) end
return 1
