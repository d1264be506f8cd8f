-- Records a job's outcome and acknowledges it in one atomic step, so a job is counted
-- exactly once even when it was delivered twice. An evaluation is stored with a
-- compare-and-set on seq, together with the flags the worker decided (drift_core::alarm
-- decides; this script only stores), so flags, the number of features drifting, detection
-- counters and the last-drift time always agree. Alarm episodes follow drift_core::alarm::
-- starts_episode on the feature's stored last exceedance: an exceedance after none in the
-- previous `lookback` rounds starts one; `alarm` is set by an episode's start and cleared
-- by the first evaluation under threshold.
-- Modes: 'stale' (a skipped job), 'own' (a local rule: only this feature's flag changes),
-- 'all' (a rule over every feature: all flags, decided on the snapshot at revision `rev`;
-- refused with the current snapshot when another evaluation was recorded since).
-- KEYS[1]=jobs KEYS[2]=stats KEYS[3]=state KEYS[4]=config KEYS[5]=history KEYS[5+i]=res_i
-- ARGV[1]=group ARGV[2]=job id ARGV[3]=mode ARGV[4]=feature index (0-based) ARGV[5]=seq
-- ARGV[6]=version ARGV[7]=now (unix seconds) ARGV[8]=p ARGV[9]=statistic ARGV[10]=location
-- ARGV[11]=sign ARGV[12]=window rows ARGV[13]=method ARGV[14]=history maxlen
-- ARGV[15]=flagged features from which the data set counts as drifted
-- ARGV[16]=threshold ('' when the rule has none) ARGV[17]=round of the feature (boundary
-- index) ARGV[18]=episode lookback in rounds
-- ARGV[19]=flags: 'own': '0' or '1'; 'all': one '0'/'1' per feature ARGV[20]=rev ('all')
-- Returns {'evaluated'}, {'stale'}, {'duplicate'} or {'conflict', rev, p_1, ..., p_nf}.
local function ack()
  return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1
end
local function skip()
  if not ack() then return {'duplicate'} end
  redis.call('HINCRBY', KEYS[2], 'stale', 1)
  return {'stale'}
end
local mode = ARGV[3]
if mode == 'stale' then
  return skip()
end
local cfg = redis.call('HMGET', KEYS[4], 'version', 'nf')
if cfg[1] ~= ARGV[6] then
  return skip()
end
local nf = tonumber(cfg[2])
local fi = tonumber(ARGV[4]) + 1
local rk = KEYS[5 + fi]
local cur = redis.call('HGET', rk, 'seq')
if cur and tonumber(cur) >= tonumber(ARGV[5]) then
  return skip()
end
if mode == 'all' and (redis.call('HGET', KEYS[3], 'rev') or '0') ~= ARGV[20] then
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then
    return {'duplicate'}
  end
  local out = {'conflict', redis.call('HGET', KEYS[3], 'rev') or '0'}
  for i = 1, nf do
    out[#out + 1] = redis.call('HGET', KEYS[5 + i], 'p') or ''
  end
  return out
end
if not ack() then
  return {'duplicate'}
end
local prev = redis.call('HMGET', rk, 'drifted', 'last_exceed', 'alarm')
local was = prev[1] == '1'
redis.call('HSET', rk, 'seq', ARGV[5], 'p', ARGV[8], 'statistic', ARGV[9], 'location', ARGV[10],
  'sign', ARGV[11], 'n', ARGV[12], 'method', ARGV[13], 'evaluated_at', ARGV[7], 'version', ARGV[6])
if ARGV[16] ~= '' then
  redis.call('HSET', rk, 'threshold', ARGV[16])
end
redis.call('HINCRBY', rk, 'evaluations', 1)
redis.call('HINCRBY', KEYS[2], 'evaluations', 1)
local flagged
local drifting
if mode == 'own' then
  flagged = ARGV[19] == '1'
  drifting = tonumber(redis.call('HGET', KEYS[3], 'drifting') or '0')
  if flagged and not was then drifting = drifting + 1 end
  if was and not flagged then drifting = drifting - 1 end
  redis.call('HSET', rk, 'drifted', flagged and '1' or '0')
else
  flagged = string.sub(ARGV[19], fi, fi) == '1'
  drifting = 0
  for i = 1, nf do
    local k = KEYS[5 + i]
    -- Features never evaluated keep no result (and no flag).
    if i == fi or redis.call('HEXISTS', k, 'seq') == 1 then
      local fl = string.sub(ARGV[19], i, i)
      if fl == '1' then drifting = drifting + 1 end
      if redis.call('HGET', k, 'drifted') ~= fl then
        redis.call('HSET', k, 'drifted', fl)
        -- Another feature's flag re-decided off: its alarm ends; on: not its own round,
        -- so no episode.
        if fl == '0' and i ~= fi then redis.call('HSET', k, 'alarm', '0') end
      end
    end
  end
end
local episode = false
if flagged then
  local round = tonumber(ARGV[17])
  episode = (not prev[2]) or (round - tonumber(prev[2]) > tonumber(ARGV[18]))
  local alarm = episode or prev[3] == '1'
  redis.call('HSET', rk, 'last_exceed', ARGV[17], 'alarm', alarm and '1' or '0')
  if episode then
    redis.call('HINCRBY', rk, 'episodes', 1)
    redis.call('HINCRBY', KEYS[2], 'episodes', 1)
  end
else
  redis.call('HSET', rk, 'alarm', '0')
end
-- The evaluation history: what was decided for this feature at this boundary.
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[14], '*', 'f', ARGV[4], 's', ARGV[5],
  'p', ARGV[8], 'd', ARGV[9], 'c', ARGV[16], 'drifted', flagged and '1' or '0',
  'e', episode and '1' or '0', 'drifting', drifting, 'v', ARGV[6], 't', ARGV[7])
if flagged then
  redis.call('HINCRBY', rk, 'detections', 1)
  redis.call('HINCRBY', KEYS[2], 'detections', 1)
end
local dataset = '0'
if drifting >= tonumber(ARGV[15]) then dataset = '1' end
redis.call('HSET', KEYS[3], 'drifting', drifting, 'share', string.format('%.17g', drifting / nf),
  'dataset_drifted', dataset, 'decided_at', ARGV[7], 'seq', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'rev', 1)
if drifting > 0 then
  redis.call('HSET', KEYS[3], 'last_detected', ARGV[7])
end
return {'evaluated'}
