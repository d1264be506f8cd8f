-- Registers or updates a monitor atomically. Idempotent: the same version and config
-- change nothing. A new reference version starts from zero: results, state, counters,
-- history, events, windows and the row counter are cleared, so nothing of an earlier
-- registration (even one with the same reference hash) is mixed with the new one; a
-- changed feature list also clears the keys of the old features.
-- A new monitor or version is announced on the registry stream, which workers read with
-- their jobs, so that they read the new jobs stream before its first boundary is crossed.
-- KEYS[1]=config KEYS[2]=monitors KEYS[3]=jobs KEYS[4]=state KEYS[5]=seq KEYS[6]=registry
-- KEYS[7]=stats KEYS[8]=history KEYS[9]=events KEYS[10]=event sizes KEYS[11]=window blocks
--   then per new feature i (1..nf): KEYS[11+3i-2]=win_i KEYS[11+3i-1]=res_i KEYS[11+3i]=ref_i
--   then per old feature j: KEYS[11+3nf+3j-2]=win_j KEYS[11+3nf+3j-1]=res_j KEYS[11+3nf+3j]=ref_j
-- ARGV[1]=version ARGV[2]=config json ARGV[3]=window ARGV[4]=stride ARGV[5]=nf
-- ARGV[6]=monitor name ARGV[7]=group ARGV[8]=features joined by \n
-- ARGV[9]=old features joined by \n, as the caller read them (their keys follow the new ones)
-- ARGV[10]=most monitors that may be registered (-1: no limit)
-- ARGV[11..10+nf]=sorted reference blobs
-- Returns {code, created}: code 0 (unchanged), 1 (parameters updated) or 2 (new version),
-- created 1 when the monitor was not registered before; error STALECONFIG when the old
-- features are not the ones the caller passed keys for (read again and retry), error
-- TOOMANYMONITORS when a new monitor would exceed the limit (checked here, so concurrent
-- registrations cannot overshoot it).
local nf = tonumber(ARGV[5])
local cur = redis.call('HMGET', KEYS[1], 'version', 'json', 'features')
if (cur[3] or '') ~= ARGV[9] then
  return redis.error_reply('STALECONFIG the monitor was registered concurrently; retry')
end
local max = tonumber(ARGV[10])
local member = redis.call('SISMEMBER', KEYS[2], ARGV[6]) == 1
if not member and max >= 0 and redis.call('SCARD', KEYS[2]) >= max then
  return redis.error_reply('TOOMANYMONITORS at most ' .. max .. ' monitors can be registered')
end
redis.pcall('XGROUP', 'CREATE', KEYS[3], ARGV[7], '0', 'MKSTREAM')
redis.pcall('XGROUP', 'CREATE', KEYS[6], ARGV[7], '0', 'MKSTREAM')
local added = redis.call('SADD', KEYS[2], ARGV[6]) == 1
if added or cur[1] ~= ARGV[1] then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', 1000, '*', 'm', ARGV[6], 'v', ARGV[1])
end
local created = added and 1 or 0
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  return {0, created}
end
if cur[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'json', ARGV[2], 'window', ARGV[3], 'stride', ARGV[4])
  return {1, created}
end
local base = 11
if cur[3] and cur[3] ~= ARGV[8] then
  for k = base + 1 + 3 * nf, #KEYS do
    redis.call('DEL', KEYS[k])
  end
end
-- Jobs of the old registration stay on the stream; they name the old version or a row
-- the reset counter has not reached, so workers skip them as stale.
redis.call('DEL', KEYS[4], KEYS[5], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
for i = 1, nf do
  redis.call('DEL', KEYS[base + 3 * i - 2], KEYS[base + 3 * i - 1])
  redis.call('SET', KEYS[base + 3 * i], ARGV[10 + i])
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2], 'window', ARGV[3],
  'stride', ARGV[4], 'nf', ARGV[5], 'features', ARGV[8])
return {2, created}
