-- Adds a monitor to the set of registered monitors unless that would exceed the limit,
-- in one step, so that concurrent registrations cannot overshoot it. The set is the one
-- key not in any monitor's slot: this script touches nothing else, so it runs the same
-- on one Redis and on a cluster.
-- KEYS[1]=monitors
-- ARGV[1]=monitor name ARGV[2]=most monitors that may be registered (-1: no limit)
-- Returns 1 when the monitor was added, 0 when it was registered already; error
-- TOOMANYMONITORS when adding it would exceed the limit.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 0
end
local max = tonumber(ARGV[2])
if max >= 0 and redis.call('SCARD', KEYS[1]) >= max then
  return redis.error_reply('TOOMANYMONITORS at most ' .. max .. ' monitors can be registered')
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
