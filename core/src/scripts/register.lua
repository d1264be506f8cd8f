-- Registers or updates a monitor atomically. Idempotent: the same version and config
-- change nothing. A new reference version clears results and state (results of two
-- reference versions are never mixed); a changed feature list also clears the windows
-- and the row counter of the old features.
-- KEYS[1]=config KEYS[2]=monitors KEYS[3]=jobs KEYS[4]=state KEYS[5]=seq
--   then per feature i: KEYS[5+3i-2]=win_i KEYS[5+3i-1]=res_i KEYS[5+3i]=ref_i
-- ARGV[1]=version ARGV[2]=config json ARGV[3]=window ARGV[4]=stride ARGV[5]=nf
-- ARGV[6]=monitor name ARGV[7]=group ARGV[8]=features joined by \n ARGV[9]=key base
-- ARGV[10..9+nf]=sorted reference blobs
local nf = tonumber(ARGV[5])
redis.pcall('XGROUP', 'CREATE', KEYS[3], ARGV[7], '0', 'MKSTREAM')
redis.call('SADD', KEYS[2], ARGV[6])
local cur = redis.call('HMGET', KEYS[1], 'version', 'json', 'features')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  return 0
end
if cur[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'json', ARGV[2], 'window', ARGV[3], 'stride', ARGV[4])
  return 1
end
if cur[3] and cur[3] ~= ARGV[8] then
  for f in string.gmatch(cur[3], '[^\n]+') do
    redis.call('DEL', ARGV[9] .. ':win:' .. f, ARGV[9] .. ':res:' .. f, ARGV[9] .. ':ref:' .. f)
  end
  redis.call('DEL', KEYS[5])
end
redis.call('DEL', KEYS[4])
for i = 1, nf do
  redis.call('DEL', KEYS[5 + 3 * i - 1])
  redis.call('SET', KEYS[5 + 3 * i], ARGV[9 + i])
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2], 'window', ARGV[3],
  'stride', ARGV[4], 'nf', ARGV[5], 'features', ARGV[8])
return 2
