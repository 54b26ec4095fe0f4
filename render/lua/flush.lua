local call, KEYS, ARGV, tonumber, unpack = redis.call, KEYS, ARGV, tonumber, unpack
local tenants, ck = KEYS[#KEYS-1], KEYS[#KEYS]
local nt = tonumber(ARGV[2])
-- First every tenant's version: a tenant whose read model is neither at
-- its ops' base nor past their version refuses the whole flush, named by
-- its place in the flush (1-based) and its version. A tenant given again
-- is checked (and later written) against the version its earlier place
-- leaves, as ApplyScript calls in turn would see it.
-- The key and op counts are parsed once (ix: ops.lua), kept by place
-- with the versions for the writes.
local cur, ver, nks, nas, stale, after, ix = {}, {}, {}, {}, {}, {}, {}
local i, kb = 3, 0
for t = 1, nt do
  local meta = KEYS[kb+1]
  local c = after[meta] or tonumber(call('HGET', meta, 'version') or '0')
  cur[t] = c
  local v = tonumber(ARGV[i+1])
  ver[t] = v
  if c < v and c ~= tonumber(ARGV[i+2]) then
    stale[#stale+1] = t .. ' ' .. c
  end
  if c < v then after[meta] = v else after[meta] = c end
  local a, b = ARGV[i], ARGV[i+4]
  local nk, na = ix[a], ix[b]
  if nk == nil then nk = tonumber(a); ix[a] = nk end
  if na == nil then na = tonumber(b); ix[b] = na end
  nks[t], nas[t] = nk, na
  kb = kb + nk
  i = i + 5 + na
end
if #stale > 0 then return redis.error_reply('SLBASE ' .. table.concat(stale, ' ')) end
i, kb = 3, 0
for t = 1, nt do
  local nkeys, vs, tid = nks[t], ARGV[i+1], ARGV[i+3]
  local n = i + 4 + nas[t]
  i = i + 5
  if cur[t] < ver[t] then
-- ops.lua
    call('HSET', KEYS[kb+1], 'version', vs)
  end
  i = n + 1
  if tid ~= '' then call('SADD', tenants, tid) end
  kb = kb + nkeys
end
local pos = tonumber(ARGV[1])
if pos > tonumber(call('GET', ck) or '0') then call('SET', ck, ARGV[1]) end
return 1
