-- Records a job's outcome and acknowledges it in one atomic step, so a job is counted
-- exactly once even when it was delivered twice. For an evaluation it stores the result
-- with a compare-and-set on seq and recomputes the monitor's decision over the latest
-- p-value of every feature (same rules as drift_core::correction::decide), so flags, the
-- number of features drifting, detection counters and last-drift time always agree.
-- KEYS[1]=jobs KEYS[2]=stats KEYS[3]=state KEYS[4]=config KEYS[5]=history KEYS[5+i]=res_i
-- ARGV[1]=group ARGV[2]=job id ARGV[3]=mode ('eval'|'stale') ARGV[4]=feature index (0-based)
-- ARGV[5]=seq ARGV[6]=version ARGV[7]=now (unix seconds) ARGV[8]=p ARGV[9]=statistic
-- ARGV[10]=location ARGV[11]=sign ARGV[12]=window rows ARGV[13]=method ARGV[14]=history maxlen
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 'duplicate'
end
if ARGV[3] == 'stale' then
  redis.call('HINCRBY', KEYS[2], 'stale', 1)
  return 'stale'
end
local cfg = redis.call('HMGET', KEYS[4], 'version', 'json', 'nf')
if cfg[1] ~= ARGV[6] then
  redis.call('HINCRBY', KEYS[2], 'stale', 1)
  return 'stale'
end
local conf = cjson.decode(cfg[2])
local nf = tonumber(cfg[3])
local fi = tonumber(ARGV[4]) + 1
local rk = KEYS[5 + fi]
local cur = redis.call('HGET', rk, 'seq')
if cur and tonumber(cur) >= tonumber(ARGV[5]) then
  redis.call('HINCRBY', KEYS[2], 'stale', 1)
  return 'stale'
end
redis.call('HSET', rk, 'seq', ARGV[5], 'p', ARGV[8], 'statistic', ARGV[9], 'location', ARGV[10],
  'sign', ARGV[11], 'n', ARGV[12], 'method', ARGV[13], 'evaluated_at', ARGV[7], 'version', ARGV[6])
redis.call('HINCRBY', rk, 'evaluations', 1)
redis.call('HINCRBY', KEYS[2], 'evaluations', 1)

local alpha = tonumber(conf['alpha'])
local corr = conf['correction']
local ps = {}
for i = 1, nf do
  -- HGET answers false (not nil) for a missing field.
  local p = tonumber(redis.call('HGET', KEYS[5 + i], 'p') or '')
  if p ~= nil and p ~= p then p = nil end
  ps[i] = p
end
local flags = {}
if corr == 'bh' then
  local order = {}
  for i = 1, nf do
    if ps[i] ~= nil then table.insert(order, i) end
  end
  table.sort(order, function(a, b)
    if ps[a] == ps[b] then return a < b end
    return ps[a] < ps[b]
  end)
  local cutoff = 0
  for rank = 1, #order do
    if ps[order[rank]] <= rank / nf * alpha then cutoff = rank end
  end
  for rank = 1, cutoff do flags[order[rank]] = true end
else
  for i = 1, nf do
    local p = ps[i]
    if p ~= nil then
      if corr == 'bonferroni' then
        flags[i] = p * nf <= alpha
      else
        flags[i] = p <= alpha
      end
    end
  end
end
local drifting = 0
for i = 1, nf do
  if ps[i] ~= nil then
    local fl = '0'
    if flags[i] then fl = '1'; drifting = drifting + 1 end
    if redis.call('HGET', KEYS[5 + i], 'drifted') ~= fl then
      redis.call('HSET', KEYS[5 + i], 'drifted', fl)
    end
  end
end
local flagged = '0'
if flags[fi] then flagged = '1' end
-- The evaluation history: what was decided for this feature at this boundary.
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[14], '*', 'f', ARGV[4], 's', ARGV[5],
  'p', ARGV[8], 'd', ARGV[9], 'drifted', flagged, 'drifting', drifting, 'v', ARGV[6], 't', ARGV[7])
if flags[fi] then
  redis.call('HINCRBY', rk, 'detections', 1)
  redis.call('HINCRBY', KEYS[2], 'detections', 1)
end
local share = drifting / nf
local dataset = '0'
if drifting > 0 and share >= tonumber(conf['dataset_drift_share']) then dataset = '1' end
redis.call('HSET', KEYS[3], 'drifting', drifting, 'share', string.format('%.17g', share),
  'dataset_drifted', dataset, 'decided_at', ARGV[7], 'seq', ARGV[5])
if drifting > 0 then
  redis.call('HSET', KEYS[3], 'last_detected', ARGV[7])
end
return 'evaluated'
