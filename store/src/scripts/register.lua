-- Registers or updates a monitor atomically. Idempotent: the same version and config
-- change nothing. A new reference version starts from zero: results, state, counters,
-- history, events, windows and the row counter are cleared, so nothing of an earlier
-- registration (even one with the same reference hash) is mixed with the new one; a
-- changed feature list also clears the keys of the old features.
-- Every key is in the monitor's slot: the caller adds the monitor to the set of monitors
-- first (enlist.lua) and announces a new version afterwards (announce.lua), so that this
-- runs unchanged on a Redis Cluster.
-- KEYS[1]=config KEYS[2]=jobs KEYS[3]=state KEYS[4]=seq KEYS[5]=stats KEYS[6]=history
-- KEYS[7]=events KEYS[8]=event sizes KEYS[9]=window blocks
--   then per new feature i (1..nf): KEYS[9+3i-2]=win_i KEYS[9+3i-1]=res_i KEYS[9+3i]=ref_i
--   then per old feature j: KEYS[9+3nf+3j-2]=win_j KEYS[9+3nf+3j-1]=res_j KEYS[9+3nf+3j]=ref_j
-- ARGV[1]=version ARGV[2]=config json ARGV[3]=window ARGV[4]=stride ARGV[5]=nf
-- ARGV[6]=group ARGV[7]=features joined by \n
-- ARGV[8]=old features joined by \n, as the caller read them (their keys follow the new ones)
-- ARGV[9..8+nf]=sorted reference blobs
-- Returns code 0 (unchanged), 1 (parameters updated) or 2 (new version); error
-- STALECONFIG when the old features are not the ones the caller passed keys for (read
-- again and retry).
local nf = tonumber(ARGV[5])
local cur = redis.call('HMGET', KEYS[1], 'version', 'json', 'features')
if (cur[3] or '') ~= ARGV[8] then
  return redis.error_reply('STALECONFIG the monitor was registered concurrently; retry')
end
redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[6], '0', 'MKSTREAM')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  return 0
end
if cur[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'json', ARGV[2], 'window', ARGV[3], 'stride', ARGV[4])
  return 1
end
local base = 9
if cur[3] and cur[3] ~= ARGV[7] then
  for k = base + 1 + 3 * nf, #KEYS do
    redis.call('DEL', KEYS[k])
  end
end
-- Jobs of the old registration stay on the stream; they name the old version or a row
-- the reset counter has not reached, so workers skip them as stale.
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
for i = 1, nf do
  redis.call('DEL', KEYS[base + 3 * i - 2], KEYS[base + 3 * i - 1])
  redis.call('SET', KEYS[base + 3 * i], ARGV[8 + i])
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2], 'window', ARGV[3],
  'stride', ARGV[4], 'nf', ARGV[5], 'features', ARGV[7])
return 2
