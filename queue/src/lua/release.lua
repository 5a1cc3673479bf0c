-- Give leased-but-unstarted jobs back (graceful shutdown). KEYS: ready, inflight.
-- ARGV: base, wake_channel, then id, lease member per job. The attempt is not counted: the job
-- never ran.
local base, channel = ARGV[1], ARGV[2]
local released = 0
for i = 3, #ARGV, 2 do
  local id, member = ARGV[i], ARGV[i + 1]
  if redis.call('ZREM', KEYS[2], member) == 1 then
    local jk = base .. ':job:' .. id
    if holds_slot(member) then free_slot(base, KEYS[1], id) end
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('HSET', jk, 'state', 'queued')
    requeue(base, KEYS[1], id)
    released = released + 1
  end
end
if released > 0 then redis.call('PUBLISH', channel, released) end
return released
