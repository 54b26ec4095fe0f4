local tenants, ck = KEYS[#KEYS-1], KEYS[#KEYS]
local nt = tonumber(ARGV[2])
-- First every tenant's version: a tenant whose read model is neither at
-- its ops' base nor past their version refuses the whole flush, named by
-- its place in the flush (1-based) and its version.
local cur, stale = {}, {}
local i, kb = 3, 0
for t = 1, nt do
  local c = tonumber(redis.call('HGET', KEYS[kb+1], 'version') or '0')
  cur[t] = c
  if c < tonumber(ARGV[i+1]) and c ~= tonumber(ARGV[i+2]) then
    stale[#stale+1] = t .. ' ' .. c
  end
  kb = kb + tonumber(ARGV[i])
  i = i + 5 + tonumber(ARGV[i+4])
end
if #stale > 0 then return redis.error_reply('SLBASE ' .. table.concat(stale, ' ')) end
i, kb = 3, 0
for t = 1, nt do
  local nkeys, vs, tid = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+3]
  local n = i + 4 + tonumber(ARGV[i+4])
  i = i + 5
  if cur[t] < tonumber(vs) then
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
