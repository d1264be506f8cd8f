-- Clears a monitor's data (windows, counters, results, history, jobs) but keeps its
-- config and reference; in 'delete' mode also removes those (the caller has taken the
-- monitor out of the set of monitors first, which is in another slot). Atomic, so no
-- reader sees half a monitor.
-- KEYS[1]=jobs then every other key to delete
-- ARGV[1]=mode ('reset'|'delete') ARGV[2]=group
redis.call('DEL', unpack(KEYS))
if ARGV[1] ~= 'delete' then
  -- Jobs enqueued from now on must find the group.
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[2], '0', 'MKSTREAM')
end
return 1
