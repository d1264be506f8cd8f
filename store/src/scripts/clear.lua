-- Clears a monitor's data (windows, counters, results, history, jobs) but keeps its
-- config and reference; in 'delete' mode also removes those and unregisters it. Atomic,
-- so no reader sees half a monitor.
-- KEYS[1]=monitors KEYS[2]=jobs then every other key to delete
-- ARGV[1]=mode ('reset'|'delete') ARGV[2]=monitor name ARGV[3]=group
redis.call('DEL', unpack(KEYS, 2))
if ARGV[1] == 'delete' then
  redis.call('SREM', KEYS[1], ARGV[2])
else
  -- Jobs enqueued from now on must find the group.
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[3], '0', 'MKSTREAM')
end
return 1
