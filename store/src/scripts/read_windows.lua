-- Reads the windows of a batch of jobs of one monitor in one step (at most one job per
-- feature: the worker keeps the newest of each feature and drops the others unread).
-- Each window comes back as one string of its 8-byte values, oldest first, cut from the
-- blocks of rows its list holds (see ingest.lua): a few list items per window, instead of
-- one per value, for Redis to convert and for the worker to parse.
-- A job names the batch end `s` at which its feature crossed a boundary. While the list
-- still holds its own window (the `window` rows ending at row `s`; lists keep one stride
-- more than the window), that window is read. Once it is gone (the worker is behind), the
-- newest one, ending at the current row count, is read instead: the feature is evaluated
-- on the latest data rather than not at all, and the jobs of the boundaries in between
-- find a result at or beyond theirs and are dropped without reading anything.
-- Each window read is leased to the job (fields claim, claim_until, claim_id of the
-- result hash) so that another worker holding a job of the same feature does not evaluate
-- the same rows again; a lease expires, so a crashed worker's feature is evaluated by the
-- next job (or by its own job, taken over after the idle time).
-- For an alarm rule that looks at every feature (BH) it also returns the decision
-- snapshot: the state's revision and every feature's latest p-value.
-- KEYS[1]=seq KEYS[2]=config KEYS[3]=state KEYS[3+i]=res_i KEYS[3+nf+i]=win_i (i=1..nf)
-- ARGV[1]=version ARGV[2]=lease (ms) ARGV[3]='1' for a snapshot ARGV[4]=jobs J
-- ARGV[5+3j..7+3j]=feature index (0-based), s, job id of job j (j=0..J-1)
-- Returns {'version'} when the monitor is at another version, else
-- {'ok', {entry_1, ..., entry_J}[, {rev, p_1, ..., p_nf}]} with entry
-- {'w', seq of the window, its values} or {'s', 'stale'|'superseded', reason} or
-- {'c', reason} (a corrupt window); a missing p is ''.
local cfg = redis.call('HMGET', KEYS[2], 'version', 'window', 'stride', 'nf')
if cfg[1] ~= ARGV[1] then
  return {'version'}
end
local window, stride, nf = tonumber(cfg[2]), tonumber(cfg[3]), tonumber(cfg[4])
if #KEYS ~= 3 + 2 * nf then
  return redis.error_reply('BADBATCH keys do not match the monitor')
end
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
-- The `need` rows after skipping the `skip` newest of a window list (blocks newest first,
-- each block's rows oldest first), oldest first; nil when the list does not hold them all,
-- false when it is corrupt.
local function rows_of(wk, skip, need)
  local parts, o, got = {}, 0, 0
  for _, b in ipairs(redis.call('LRANGE', wk, 0, -1)) do
    if #b % 8 ~= 0 then
      return false
    end
    local size = #b / 8
    local lo, hi = math.max(skip, o), math.min(skip + need, o + size) - 1
    if hi >= lo then
      parts[#parts + 1] = string.sub(b, (size - 1 - (hi - o)) * 8 + 1, (size - (lo - o)) * 8)
      got = got + hi - lo + 1
    end
    o = o + size
    if o >= skip + need then break end
  end
  if got < need then
    return nil
  end
  local ordered = {}
  for k = #parts, 1, -1 do ordered[#ordered + 1] = parts[k] end
  return table.concat(ordered)
end
local out = {}
for j = 0, tonumber(ARGV[4]) - 1 do
  local fi = tonumber(ARGV[5 + 3 * j]) + 1
  local s = tonumber(ARGV[6 + 3 * j])
  local id = ARGV[7 + 3 * j]
  local rk, wk = KEYS[3 + fi], KEYS[3 + nf + fi]
  local res = redis.call('HMGET', rk, 'seq', 'claim', 'claim_until', 'claim_id')
  -- Whether the window ending at row e is already evaluated, or leased to another job.
  local function taken(e)
    if res[1] and tonumber(res[1]) >= e then return 'evaluated' end
    if res[2] and tonumber(res[2]) >= e and tonumber(res[3]) > now and res[4] ~= id then
      return 'leased'
    end
  end
  if c < s then
    out[#out + 1] = {'s', 'stale', 'reset'}
  else
    -- The job's own window while the list still holds it, else the newest.
    local e, blob = s, nil
    local why = taken(s)
    if not why then
      blob = rows_of(wk, c - s, math.min(window, s))
      if blob == nil and c > s then
        e = c
        why = taken(c)
        if not why then blob = rows_of(wk, 0, math.min(window, c)) end
      end
    end
    if why then
      out[#out + 1] = {'s', 'superseded', why}
    elseif blob == false then
      out[#out + 1] = {'c', 'a window block is not a whole number of 8-byte values'}
    elseif blob == nil then
      out[#out + 1] = {'s', 'stale', 'missing'}
    else
      redis.call('HSET', rk, 'claim', e, 'claim_until', now + lease, 'claim_id', id)
      out[#out + 1] = {'w', e, blob}
    end
  end
end
if ARGV[3] ~= '1' then
  return {'ok', out}
end
local snap = {redis.call('HGET', KEYS[3], 'rev') or '0'}
for i = 1, nf do
  snap[#snap + 1] = redis.call('HGET', KEYS[3 + i], 'p') or ''
end
return {'ok', out, snap}
