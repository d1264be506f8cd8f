-- Decides which window each job of a batch of one monitor reads, and leases it (at most
-- one job per feature: the worker keeps the newest of each feature and drops the others
-- unread).
-- It runs first in a MULTI whose next commands are the LRANGEs of those features' lists
-- (blocks of rows, see ingest.lua), so the row offsets it returns hold for them, and the
-- values never pass through Lua (Lua copies and interns every string it touches: handing
-- 30 windows through it cost more than a millisecond per batch).
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
-- KEYS[1]=seq KEYS[2]=config KEYS[3]=state KEYS[3+i]=res_i (i=1..nf) KEYS[4+nf]=window
-- blocks (the window lists themselves are read by the LRANGEs that follow, not here)
-- ARGV[1]=version ARGV[2]=lease (ms) ARGV[3]='1' for a snapshot ARGV[4]=jobs J
-- ARGV[5+3j..7+3j]=feature index (0-based), s, job id of job j (j=0..J-1)
-- Returns {'version'} when the monitor is at another version, else
-- {'ok', {entry_1, ..., entry_J}[, {rev, p_1, ..., p_nf}]} with entry
-- {'w', seq of the window, newest rows of the list to skip, rows to take} or
-- {'s', 'stale'|'superseded', reason}; a missing p is ''.
local cfg = redis.call('HMGET', KEYS[2], 'version', 'window', 'nf')
if cfg[1] ~= ARGV[1] then
  return {'version'}
end
local window, nf = tonumber(cfg[2]), tonumber(cfg[3])
if #KEYS ~= 4 + nf then
  return redis.error_reply('BADBATCH keys do not match the monitor')
end
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
-- Rows held by the window lists (every feature's list has the layout of the blocks list).
local held = 0
for _, b in ipairs(redis.call('LRANGE', KEYS[4 + nf], 0, -1)) do
  held = held + tonumber(b)
end
local out = {}
for j = 0, tonumber(ARGV[4]) - 1 do
  local fi = tonumber(ARGV[5 + 3 * j]) + 1
  local s = tonumber(ARGV[6 + 3 * j])
  local id = ARGV[7 + 3 * j]
  local rk = KEYS[3 + fi]
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
    -- The job's own window while the lists still hold it, else the newest.
    local e = s
    if c - s + math.min(window, s) > held then e = c end
    local why = taken(e)
    if why then
      out[#out + 1] = {'s', 'superseded', why}
    elseif math.min(window, e) > held then
      out[#out + 1] = {'s', 'stale', 'missing'}
    else
      redis.call('HSET', rk, 'claim', e, 'claim_until', now + lease, 'claim_id', id)
      out[#out + 1] = {'w', e, c - e, math.min(window, e)}
    end
  end
end
if ARGV[3] ~= '1' then
  return {'ok', out}
end
local snap = {redis.call('HGET', KEYS[3], 'rev') or '0'}
for i = 1, nf do
  -- The feature p-value (over its signals) when stored, else the distribution test's.
  local r = redis.call('HMGET', KEYS[3 + i], 'pf', 'p')
  snap[#snap + 1] = r[1] or r[2] or ''
end
return {'ok', out, snap}
