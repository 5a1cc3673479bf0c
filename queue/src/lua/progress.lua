-- A running job's progress. KEYS: inflight. ARGV: base, id, lease member, percent, message.
-- Written only while the lease is held: a worker that lost the job cannot overwrite
-- what the newer attempt reports. Returns 1 when written.
local jk = ARGV[1] .. ':job:' .. ARGV[2]
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
redis.call('HSET', jk, 'progress', ARGV[4], 'progress_msg', ARGV[5], 'progress_at', redis_now_ms())
return 1
