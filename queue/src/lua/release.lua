-- Give leased-but-unstarted jobs back (graceful shutdown). KEYS: ready, inflight.
-- ARGV: base, wake_channel, then id, lease member per job. The attempt is not counted: the job
-- never ran.
local base, channel = ARGV[1], ARGV[2]
local released = 0
-- Back into its priority's ready list: `front` to be leased next (RPUSH, the popping end).
local function requeue(id, front)
  local p = redis.call('HGET', base .. ':job:' .. id, 'prio')
  local list = KEYS[1]
  if p then
    list = base .. ':ready:' .. p
    redis.call('SADD', base .. ':prios', p)
  end
  if front then redis.call('RPUSH', list, id) else redis.call('LPUSH', list, id) end
end
for i = 3, #ARGV, 2 do
  local id, member = ARGV[i], ARGV[i + 1]
  if redis.call('ZREM', KEYS[2], member) == 1 then
    local jk = base .. ':job:' .. id
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('HSET', jk, 'state', 'queued')
    requeue(id, true)
    released = released + 1
  end
end
if released > 0 then redis.call('PUBLISH', channel, released) end
return released
