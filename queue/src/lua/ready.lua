-- Shared by the scripts that put a job back in a ready list (prepended to each when loaded).
-- Priority 5, the default, is the `ready` list; each other priority has `ready:<p>`, and the
-- `prios` set names those in use so a lease knows which to look at.

-- Puts job `id` back in its priority's ready list, at the leasing end (RPUSH): a job that
-- was already due or running goes before the ones queued after it.
local function requeue(base, ready, id)
  local p = redis.call('HGET', base .. ':job:' .. id, 'prio')
  local list = ready
  if p then
    list = base .. ':ready:' .. p
    redis.call('SADD', base .. ':prios', p)
  end
  redis.call('RPUSH', list, id)
end
