-- One ingest: append a batch to every feature's capped window, bump the row counter,
-- log the batch on the events stream and, when an evaluation boundary is crossed,
-- enqueue one job per feature. Atomic, so windows, counter and jobs never disagree.
-- KEYS[1]=config KEYS[2]=seq KEYS[3]=events KEYS[4]=jobs KEYS[5]=stats KEYS[5+i]=win_i
-- ARGV[1]=config version the caller validated against ARGV[2]=rows
-- ARGV[3]=events maxlen ARGV[4]=jobs maxlen ARGV[5]=events byte budget
-- ARGV[6..]=values, feature-major, 8 bytes each
local cfg = redis.call('HMGET', KEYS[1], 'version', 'window', 'stride', 'nf')
if not cfg[1] then
  return redis.error_reply('NOMONITOR monitor is not registered')
end
if cfg[1] ~= ARGV[1] then
  return redis.error_reply('STALECONFIG monitor was re-registered with version ' .. cfg[1])
end
local window, stride, nf = tonumber(cfg[2]), tonumber(cfg[3]), tonumber(cfg[4])
local n = tonumber(ARGV[2])
-- Everything is checked before the first write: a batch is applied whole or not at all.
local function int_in(x, lo, hi)
  return x and x == math.floor(x) and x >= lo and x <= hi
end
if not (int_in(window, 2, 1000000) and int_in(stride, 1, 1000000) and int_in(nf, 1, 100000)) then
  return redis.error_reply('BADCONFIG monitor config has an invalid window, stride or feature count')
end
if not int_in(n, 1, 10000000) or #KEYS ~= 5 + nf or #ARGV ~= 5 + nf * n then
  return redis.error_reply('BADBATCH batch shape does not match the monitor')
end
-- Windows keep one stride more than the window so that a job can read exactly the
-- window that ended at its own boundary until the next boundary is crossed.
local cap = window + stride
local first = math.max(0, n - cap)
for f = 1, nf do
  local key = KEYS[5 + f]
  local base = 6 + (f - 1) * n
  local i = first
  while i < n do
    local j = math.min(i + 4000, n)
    redis.call('LPUSH', key, unpack(ARGV, base + i, base + j - 1))
    i = j
  end
  redis.call('LTRIM', key, 0, cap - 1)
end
local seq = redis.call('INCRBY', KEYS[2], n)
local prev = seq - n
-- The events stream is capped by entries and by the bytes of the values it holds; each
-- entry records its size so that trimming keeps the running total exact.
local bytes = 8 * nf * n
redis.call('XADD', KEYS[3], '*', 'seq', seq, 'rows', n, 'b', bytes,
  'data', table.concat(ARGV, '', 6, 5 + nf * n))
local total = redis.call('HINCRBY', KEYS[5], 'events_bytes', bytes)
local maxlen, budget = tonumber(ARGV[3]), tonumber(ARGV[5])
local len = redis.call('XLEN', KEYS[3])
while (total > budget or len > maxlen) and len > 1 do
  local old = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', math.min(len - 1, 64))
  for _, e in ipairs(old) do
    if total <= budget and len <= maxlen then break end
    local fields = e[2]
    for k = 1, #fields, 2 do
      if fields[k] == 'b' then total = total - tonumber(fields[k + 1]) end
    end
    redis.call('XDEL', KEYS[3], e[1])
    len = len - 1
  end
end
redis.call('HSET', KEYS[5], 'events_bytes', total)
local last = -1
if seq >= window then
  last = window + math.floor((seq - window) / stride) * stride
end
local jobs = 0
if last > prev then
  redis.call('HINCRBY', KEYS[5], 'rounds', 1)
  for f = 0, nf - 1 do
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'f', f, 's', seq, 'v', ARGV[1])
  end
  jobs = nf
end
return {seq, jobs}
