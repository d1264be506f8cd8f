-- Records the outcomes of a batch of jobs of one monitor and acknowledges them, in one
-- atomic step, so a job is counted exactly once even when it was delivered twice: only
-- the caller whose XACK acknowledges a job records its outcome.
-- Skipped jobs (stale or superseded) are acknowledged and counted. Each evaluation is
-- stored with a compare-and-set on seq (an older window never overwrites a newer result),
-- together with the flags the worker decided (drift_core::alarm decides; this script
-- only stores), so flags, the number of features drifting, detection counters and the
-- last-drift time always agree. Alarm episodes follow drift_core::alarm::starts_episode
-- on the feature's stored last exceedance: an exceedance after none in the previous
-- `lookback` rounds starts one; `alarm` is set by an episode's start and cleared by the
-- first evaluation under threshold.
-- Modes: 'own' (a local rule: each evaluated feature's own flag), 'all' (a rule over
-- every feature: all flags, decided on the snapshot at revision `rev`; the whole batch is
-- refused with the current snapshot when another evaluation was recorded since).
-- KEYS[1]=jobs KEYS[2]=stats KEYS[3]=state KEYS[4]=config KEYS[5]=history KEYS[5+i]=res_i
-- ARGV[1]=group ARGV[2]=version ARGV[3]=now (unix seconds) ARGV[4]=history maxlen
-- ARGV[5]=flagged features from which the data set counts as drifted
-- ARGV[6]=episode lookback in rounds ARGV[7]=mode ARGV[8]=rev ('all')
-- ARGV[9]=flags ('all': one '0'/'1' per feature) ARGV[10]=skipped S ARGV[11]=evaluations E
-- then S pairs: job id, 'stale'|'superseded'
-- then E groups of 15: job id, feature index (0-based), seq of the window, p, statistic,
-- location, sign, window rows, method, threshold ('' when the rule has none), round of the
-- feature (boundary index), own flag ('0'/'1'; 'own' mode), feature p-value (over every
-- signal; what rules over all features rank), details (JSON: kind, signals, shares,
-- effect sizes; stored as is), signals that fire if the feature is flagged (for the
-- history; comma-separated)
-- Returns {'ok', evaluated, stale, superseded, duplicate} or {'conflict', rev, p_1, ..., p_nf}.
local group, version, now = ARGV[1], ARGV[2], ARGV[3]
local mode = ARGV[7]
local ns, ne = tonumber(ARGV[10]), tonumber(ARGV[11])
local cfg = redis.call('HMGET', KEYS[4], 'version', 'nf')
local current = cfg[1] == version
local nf = tonumber(cfg[2]) or 0
local function ack(id)
  return redis.call('XACK', KEYS[1], group, id) == 1
end
local evaluated, stale, superseded, duplicate = 0, 0, 0, 0
local function skip(id, why)
  if not ack(id) then
    duplicate = duplicate + 1
  elseif why == 'superseded' then
    superseded = superseded + 1
  else
    stale = stale + 1
  end
end
local eb = 12 + 2 * ns
local G = 15
local function field(e, k)
  return ARGV[eb + G * e + k]
end
if current and mode == 'all' and ne > 0
    and (redis.call('HGET', KEYS[3], 'rev') or '0') ~= ARGV[8] then
  local out = {'conflict', redis.call('HGET', KEYS[3], 'rev') or '0'}
  for i = 1, nf do
    local r = redis.call('HMGET', KEYS[5 + i], 'pf', 'p')
    out[#out + 1] = r[1] or r[2] or ''
  end
  return out
end
for k = 0, ns - 1 do
  skip(ARGV[12 + 2 * k], ARGV[13 + 2 * k])
end
-- Evaluations that will be stored: the job is still pending and its window is newer than
-- the stored result.
local applied = {}
local own = {}
for e = 0, ne - 1 do
  local id, fi, seq = field(e, 0), tonumber(field(e, 1)) + 1, tonumber(field(e, 2))
  if not current then
    skip(id, 'stale')
  else
    local cur = redis.call('HGET', KEYS[5 + fi], 'seq')
    if cur and tonumber(cur) >= seq then
      skip(id, 'superseded')
    elseif not ack(id) then
      duplicate = duplicate + 1
    else
      applied[#applied + 1] = e
      own[fi] = true
    end
  end
end
if #applied == 0 then
  if stale + superseded > 0 then
    redis.call('HINCRBY', KEYS[2], 'stale', stale + superseded)
    redis.call('HINCRBY', KEYS[2], 'superseded', superseded)
  end
  return {'ok', 0, stale, superseded, duplicate}
end
local drifting = tonumber(redis.call('HGET', KEYS[3], 'drifting') or '0')
if mode == 'all' then
  -- Every flag as decided; features never evaluated keep no result (and no flag).
  drifting = 0
  for i = 1, nf do
    local k = KEYS[5 + i]
    if own[i] or redis.call('HEXISTS', k, 'seq') == 1 then
      local fl = string.sub(ARGV[9], i, i)
      if fl == '1' then drifting = drifting + 1 end
      if not own[i] and redis.call('HGET', k, 'drifted') ~= fl then
        redis.call('HSET', k, 'drifted', fl)
        -- Another feature's flag re-decided off: its alarm ends; on: not its own round,
        -- so no episode.
        if fl == '0' then redis.call('HSET', k, 'alarm', '0') end
      end
    end
  end
end
local detections, episodes, last_seq = 0, 0, 0
for _, e in ipairs(applied) do
  local fi, seq = tonumber(field(e, 1)) + 1, field(e, 2)
  local rk = KEYS[5 + fi]
  local threshold = field(e, 9)
  local prev = redis.call('HMGET', rk, 'drifted', 'last_exceed', 'alarm')
  local flagged
  if mode == 'own' then
    flagged = field(e, 11) == '1'
    local was = prev[1] == '1'
    if flagged and not was then drifting = drifting + 1 end
    if was and not flagged then drifting = drifting - 1 end
  else
    flagged = string.sub(ARGV[9], fi, fi) == '1'
  end
  redis.call('HSET', rk, 'seq', seq, 'p', field(e, 3), 'statistic', field(e, 4),
    'location', field(e, 5), 'sign', field(e, 6), 'n', field(e, 7), 'method', field(e, 8),
    'evaluated_at', now, 'version', version, 'drifted', flagged and '1' or '0',
    'pf', field(e, 12), 'x', field(e, 13))
  if threshold ~= '' then
    redis.call('HSET', rk, 'threshold', threshold)
  else
    redis.call('HDEL', rk, 'threshold')
  end
  redis.call('HINCRBY', rk, 'evaluations', 1)
  local episode = false
  if flagged then
    local round = tonumber(field(e, 10))
    episode = (not prev[2]) or (round - tonumber(prev[2]) > tonumber(ARGV[6]))
    local alarm = episode or prev[3] == '1'
    redis.call('HSET', rk, 'last_exceed', field(e, 10), 'alarm', alarm and '1' or '0')
    redis.call('HINCRBY', rk, 'detections', 1)
    detections = detections + 1
    if episode then
      redis.call('HINCRBY', rk, 'episodes', 1)
      episodes = episodes + 1
    end
  else
    redis.call('HSET', rk, 'alarm', '0')
  end
  -- The evaluation history: what was decided for this feature at this window.
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'f', fi - 1, 's', seq,
    'p', field(e, 3), 'd', field(e, 4), 'c', threshold, 'drifted', flagged and '1' or '0',
    'e', episode and '1' or '0', 'drifting', drifting, 'v', version, 't', now,
    'sig', flagged and field(e, 14) or '')
  if tonumber(seq) > last_seq then last_seq = tonumber(seq) end
end
evaluated = #applied
redis.call('HINCRBY', KEYS[2], 'evaluations', evaluated)
if stale + superseded > 0 then
  redis.call('HINCRBY', KEYS[2], 'stale', stale + superseded)
  redis.call('HINCRBY', KEYS[2], 'superseded', superseded)
end
if detections > 0 then redis.call('HINCRBY', KEYS[2], 'detections', detections) end
if episodes > 0 then redis.call('HINCRBY', KEYS[2], 'episodes', episodes) end
local dataset = '0'
if drifting >= tonumber(ARGV[5]) then dataset = '1' end
redis.call('HSET', KEYS[3], 'drifting', drifting, 'share', string.format('%.17g', drifting / nf),
  'dataset_drifted', dataset, 'decided_at', now, 'seq', last_seq)
redis.call('HINCRBY', KEYS[3], 'rev', 1)
if drifting > 0 then
  redis.call('HSET', KEYS[3], 'last_detected', now)
end
return {'ok', evaluated, stale, superseded, duplicate}
