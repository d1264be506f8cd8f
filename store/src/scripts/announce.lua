-- Announces a new monitor or reference version on the registry stream, which workers
-- read with their jobs, so that they read the new jobs stream before its first boundary
-- is crossed. The stream is capped and has the workers' group from the first notice on.
-- KEYS[1]=registry
-- ARGV[1]=monitor name ARGV[2]=version ARGV[3]=group
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[3], '0', 'MKSTREAM')
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000, '*', 'm', ARGV[1], 'v', ARGV[2])
