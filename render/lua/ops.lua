-- Runs the ops from ARGV[i] to ARGV[n] on the keys KEYS[kb + k]:
--   hs k field value | hd k field | za k score member | zr k member
-- and the same of c items in one command (c fields and values, scores and
-- members, fields, members):
--   hs* k c ... | hd* k c ... | za* k c ... | zr* k c ...
-- An op whose name begins with '>' is on the key after the last op's (the
-- first op's last key is k = 1, the meta hash) and does not name it:
--   >hs field value | >hd field | >za score member | >zr member |
--   >z0 member (ZADD scored 0) | >hs* c ... | >hd* c ... | >za* c ... |
--   >zr* c ...
-- and >z0= | >zr= : ZADD scored 0 | ZREM of m, the last op's field or
-- member, where that op was a '>' op of one item (an index move writes one
-- member to several keys in turn: each argument costs its bytes' hashing).
-- ix (declared by the script) caches tonumber of the indexes and counts:
-- tonumber (strtod) was a tenth of the script's CPU. The script declares
-- call, KEYS, ARGV, tonumber and unpack as locals too (a global is a hash
-- lookup each time: several per op).
local x, m = 1, nil
while i <= n do
  local op = ARGV[i]
  if op == '>z0' then x = x + 1; m = ARGV[i+1]; call('ZADD', KEYS[kb + x], '0', m); i = i + 2
  elseif op == '>z0=' then x = x + 1; call('ZADD', KEYS[kb + x], '0', m); i = i + 1
  elseif op == '>zr' then x = x + 1; m = ARGV[i+1]; call('ZREM', KEYS[kb + x], m); i = i + 2
  elseif op == '>zr=' then x = x + 1; call('ZREM', KEYS[kb + x], m); i = i + 1
  elseif op == '>hs' then x = x + 1; m = ARGV[i+1]; call('HSET', KEYS[kb + x], m, ARGV[i+2]); i = i + 3
  elseif op == '>za' then x = x + 1; m = ARGV[i+2]; call('ZADD', KEYS[kb + x], ARGV[i+1], m); i = i + 3
  elseif op == '>hd' then x = x + 1; m = ARGV[i+1]; call('HDEL', KEYS[kb + x], m); i = i + 2
  else
    local cmd, per, several, follows
    if op == 'hs' then cmd, per = 'HSET', 2
    elseif op == 'za' then cmd, per = 'ZADD', 2
    elseif op == 'zr' then cmd, per = 'ZREM', 1
    elseif op == 'hd' then cmd, per = 'HDEL', 1
    elseif op == '>za*' then cmd, per, several, follows = 'ZADD', 2, true, true
    elseif op == '>zr*' then cmd, per, several, follows = 'ZREM', 1, true, true
    elseif op == '>hs*' then cmd, per, several, follows = 'HSET', 2, true, true
    elseif op == '>hd*' then cmd, per, several, follows = 'HDEL', 1, true, true
    elseif op == 'za*' then cmd, per, several = 'ZADD', 2, true
    elseif op == 'zr*' then cmd, per, several = 'ZREM', 1, true
    elseif op == 'hs*' then cmd, per, several = 'HSET', 2, true
    elseif op == 'hd*' then cmd, per, several = 'HDEL', 1, true
    else return redis.error_reply('projections: unknown op ' .. tostring(op)) end
    local j, c = i + 1, 1
    if follows then x = x + 1 else
      local a = ARGV[j]
      x = ix[a]
      if x == nil then x = tonumber(a); ix[a] = x end
      j = j + 1
    end
    if several then
      local a = ARGV[j]
      c = ix[a]
      if c == nil then c = tonumber(a); ix[a] = c end
      j = j + 1
    end
    i = j + per * c
    m = nil
    call(cmd, KEYS[kb + x], unpack(ARGV, j, i - 1))
  end
end
