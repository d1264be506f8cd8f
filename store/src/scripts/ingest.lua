-- One ingest call: the batches of one or more requests, in order, appended to every
-- feature's capped window; the row counter bumped; the call's rows logged on the capped
-- events stream; and, when an evaluation boundary is crossed, one job per feature enqueued.
-- Atomic, so windows, counter and jobs never disagree, and the requests of a call are
-- applied together or not at all.
-- KEYS[1]=config KEYS[2]=seq KEYS[3]=events KEYS[4]=jobs KEYS[5]=stats
-- KEYS[6]=event sizes (bytes of values of each events entry, oldest first)
-- KEYS[7]=window blocks (rows of each block of the window lists, newest first) KEYS[7+i]=win_i
-- ARGV[1]=config version the caller validated against ARGV[2]=rows of the call
-- ARGV[3]=events maxlen ARGV[4]=jobs maxlen ARGV[5]=events byte budget
-- ARGV[6]=deadline, milliseconds since the epoch on this server's clock (0: none)
-- ARGV[7]=requests r ARGV[7+j]=rows of request j (j = 1..r, in order)
-- ARGV[8+r]=the call's values, feature-major (feature 1's value of every row of the call in
--   row order, then feature 2's, ...), 8 bytes each: also the events entry's data as is
-- ARGV[9+r]=replicas the caller will WAIT for (0: none): with fewer connected now, the
--   write could not be acknowledged, so none is made (error NOREPLICAS), as Redis's own
--   min-replicas-to-write would refuse it
-- Returns {now, jobs, owner, seq_1, ..., seq_r}: now is this server's time in milliseconds,
-- seq_j the row count after request j's rows; jobs (0 or nf) were enqueued at row
-- seq_owner, owner 0 when none. Error EXPIRED <now> when run after the deadline: the caller
-- has given up (the call waited in a frozen server's socket), so nothing is written.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[6])
if deadline and deadline > 0 and now > deadline then
  return redis.error_reply('EXPIRED ' .. now .. ' the call reached Redis after its deadline')
end
local cfg = redis.call('HMGET', KEYS[1], 'version', 'window', 'stride', 'nf')
if not cfg[1] then
  return redis.error_reply('NOMONITOR monitor is not registered')
end
if cfg[1] ~= ARGV[1] then
  return redis.error_reply('STALECONFIG monitor was re-registered with version ' .. cfg[1])
end
local window, stride, nf = tonumber(cfg[2]), tonumber(cfg[3]), tonumber(cfg[4])
local n, r = tonumber(ARGV[2]), tonumber(ARGV[7])
-- Everything is checked before the first write: a call is applied whole or not at all.
local function int_in(x, lo, hi)
  return x and x == math.floor(x) and x >= lo and x <= hi
end
if not (int_in(window, 2, 1000000) and int_in(stride, 1, 1000000) and int_in(nf, 1, 100000)) then
  return redis.error_reply('BADCONFIG monitor config has an invalid window, stride or feature count')
end
local function bad()
  return redis.error_reply('BADBATCH batch shape does not match the monitor')
end
if not (int_in(n, 1, 10000000) and int_in(r, 1, 100000)) or #KEYS ~= 7 + nf
    or #ARGV ~= 9 + r then
  return bad()
end
local counts, sum = {}, 0
for j = 1, r do
  local c = tonumber(ARGV[7 + j])
  if not int_in(c, 1, 10000000) then
    return bad()
  end
  counts[j] = c
  sum = sum + c
end
local data = ARGV[8 + r]
if sum ~= n or #data ~= 8 * n * nf then
  return bad()
end
local replicas = tonumber(ARGV[9 + r])
if replicas and replicas > 0 then
  -- Replicas in sync and heard from within 10 s (min-replicas-max-lag's default); one
  -- still loading the initial copy would make the WAIT fail after the write. The lag can
  -- read -1 in a script that runs as the second turns (the script's frozen clock).
  local online = 0
  local info = redis.call('INFO', 'replication')
  for lag in string.gmatch(info, 'state=online,offset=%d+,lag=(%-?%d+)') do
    if tonumber(lag) <= 10 then
      online = online + 1
    end
  end
  if online < replicas then
    return redis.error_reply('NOREPLICAS ' .. online .. ' of the ' .. replicas ..
      ' replicas an acknowledgement needs are in sync')
  end
end
local call = redis.call
-- Windows keep at least one stride more than the window (the newest `cap` rows) so that
-- a job can read exactly the window that ended at its own boundary until the next
-- boundary is crossed. A window list holds blocks of consecutive rows, newest block
-- first, each the 8-byte values of its rows oldest first: one list item per block instead
-- of one per row makes an ingest two list commands per feature, and a window read a few
-- items instead of 500. Whole blocks are kept and dropped, so a list holds `cap` rows and
-- less than one more block. Small calls are appended to a small head block (LPOP and
-- LPUSH of at most BLOCK rows), so single-row traffic does not make one item per row;
-- Lua copies blocks as strings, which is why they stay small. Every feature's list has
-- the same layout, kept on the blocks list.
local BLOCK = 64
local cap = window + stride
local first = math.max(0, n - cap)
local rows = n - first
local sizes = {}
for i, b in ipairs(call('LRANGE', KEYS[7], 0, -1)) do
  sizes[i] = tonumber(b)
end
local merge = sizes[1] ~= nil and sizes[1] + rows <= BLOCK
if merge then
  sizes[1] = sizes[1] + rows
else
  table.insert(sizes, 1, rows)
end
-- The newest blocks that hold `cap` rows are kept.
local keep, held = #sizes, 0
for i = 1, #sizes do
  held = held + sizes[i]
  if held >= cap then
    keep = i
    break
  end
end
if merge then
  call('LSET', KEYS[7], 0, sizes[1])
else
  call('LPUSH', KEYS[7], rows)
end
if #sizes > keep then
  call('LTRIM', KEYS[7], 0, keep - 1)
end
for i = 1, nf do
  local key = KEYS[7 + i]
  local blob = string.sub(data, 8 * ((i - 1) * n + first) + 1, 8 * i * n)
  if merge then
    blob = (call('LPOP', key) or '') .. blob
  end
  call('LPUSH', key, blob)
  if #sizes > keep then
    call('LTRIM', key, 0, keep - 1)
  end
end
local seq = call('INCRBY', KEYS[2], n)
local out, at, owner = {now, 0, 0}, seq - n, 0
for j = 1, r do
  local before = at
  at = at + counts[j]
  out[3 + j] = at
  if at >= window and window + math.floor((at - window) / stride) * stride > before then
    owner = j
  end
end
-- The events stream is capped by entries and by the bytes of the values it holds. Each
-- entry's size is also kept, in order, on the sizes list, so trimming pops sizes and
-- trims the stream by count without reading any entry.
local bytes = 8 * nf * n
call('XADD', KEYS[3], '*', 'seq', seq, 'rows', n, 'b', bytes, 'data', data)
local total = tonumber(call('HGET', KEYS[5], 'events_bytes') or '0') + bytes
local len = call('XLEN', KEYS[3])
if call('RPUSH', KEYS[6], bytes) ~= len then
  -- The sizes list does not match the stream (entries written before it existed): rebuilt
  -- from the entries once.
  call('DEL', KEYS[6])
  total = 0
  for _, e in ipairs(call('XRANGE', KEYS[3], '-', '+')) do
    local b, fields = 0, e[2]
    for k = 1, #fields, 2 do
      if fields[k] == 'b' then b = tonumber(fields[k + 1]) end
    end
    call('RPUSH', KEYS[6], b)
    total = total + b
  end
end
local maxlen, budget = tonumber(ARGV[3]), tonumber(ARGV[5])
local drop = 0
while (total > budget or len - drop > maxlen) and len - drop > 1 do
  total = total - (tonumber(call('LPOP', KEYS[6])) or 0)
  drop = drop + 1
end
if drop > 0 then
  call('XTRIM', KEYS[3], 'MAXLEN', len - drop)
end
call('HSET', KEYS[5], 'events_bytes', total)
if owner > 0 then
  call('HINCRBY', KEYS[5], 'rounds', 1)
  for f = 0, nf - 1 do
    call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'f', f, 's', out[3 + owner], 'v', ARGV[1])
  end
  out[2], out[3] = nf, owner
end
return out
