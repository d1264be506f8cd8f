-- Moves a job that keeps failing to the dead-letter stream: written before the ack, in one
-- atomic step, and only while the job is still pending (nobody finished it meanwhile).
-- KEYS[1]=jobs KEYS[2]=dead KEYS[3]=stats
-- ARGV[1]=group ARGV[2]=job id ARGV[3]=reason ARGV[4]=deliveries ARGV[5]=dead maxlen
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  return 0
end
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local fields = {}
if entry[1] then fields = entry[1][2] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'job', ARGV[2], 'reason', ARGV[3],
  'deliveries', ARGV[4], unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'dead_letters', 1)
return 1
