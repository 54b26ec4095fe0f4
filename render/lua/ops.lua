-- Runs the ops from ARGV[i] to ARGV[n]: hs k field value | hd k field |
-- za k score member | zr k member, where KEYS[kb + k] is the key.
while i <= n do
  local op = ARGV[i]
  local k = KEYS[kb + tonumber(ARGV[i+1])]
  if op == 'hs' then redis.call('HSET', k, ARGV[i+2], ARGV[i+3]); i = i + 4
  elseif op == 'hd' then redis.call('HDEL', k, ARGV[i+2]); i = i + 3
  elseif op == 'za' then redis.call('ZADD', k, ARGV[i+2], ARGV[i+3]); i = i + 4
  elseif op == 'zr' then redis.call('ZREM', k, ARGV[i+2]); i = i + 3
  else return redis.error_reply('projections: unknown op ' .. tostring(op)) end
end
