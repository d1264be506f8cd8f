-- Reads the window a job is about: the `window` rows that ended at row `s`.
-- A job is stale when the reference changed or a newer boundary has been crossed (a newer
-- job for the same feature exists, so evaluating this one would be wasted work).
-- For an alarm rule that looks at every feature (BH), it also returns the decision
-- snapshot: the state's revision and every feature's latest p-value.
-- KEYS[1]=seq KEYS[2]=config KEYS[3]=win; with a snapshot KEYS[4]=state KEYS[4+i]=res_i
-- ARGV[1]=s ARGV[2]=version
-- Returns {'ok', rows, values[, {rev, p_1, ..., p_nf}]} or {'stale', reason}; a missing
-- p-value is ''.
local cfg = redis.call('HMGET', KEYS[2], 'version', 'window', 'stride')
if cfg[1] ~= ARGV[2] then
  return {'stale', 'version'}
end
local window, stride = tonumber(cfg[2]), tonumber(cfg[3])
local s = tonumber(ARGV[1])
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c < s then
  return {'stale', 'reset'}
end
local nextb = window
if s >= window then
  nextb = window + (math.floor((s - window) / stride) + 1) * stride
end
if c >= nextb then
  return {'stale', 'superseded'}
end
local off = c - s
local vals = redis.call('LRANGE', KEYS[3], off, off + window - 1)
if #vals < math.min(window, s) then
  return {'stale', 'missing'}
end
if #KEYS < 4 then
  return {'ok', c, vals}
end
local snap = {redis.call('HGET', KEYS[4], 'rev') or '0'}
for i = 5, #KEYS do
  snap[#snap + 1] = redis.call('HGET', KEYS[i], 'p') or ''
end
return {'ok', c, vals, snap}
