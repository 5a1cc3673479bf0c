-- Shared by every script (prepended to each when loaded): where a queued job waits, and the
-- slots of concurrency keys.
-- Priority 5, the default, is the `ready` list; each other priority has `ready:<p>`, and the
-- `prios` set names those in use so a lease knows which to look at. A job with a group waits
-- in `g:<group>` instead; `gring` rotates over the groups with jobs, plus '' for the `ready`
-- list, and `prios` holds 'g' while it exists, so a queue without groups pays nothing.
-- A job with a concurrency key holds a slot in `ck:<key>` (a set of job ids) while it is
-- leased; a job that finds the slots full waits in `ckw:<key>`, oldest at the right, until a
-- slot frees. `ckeys` names the keys that hold slots or have waiters (for the dashboard).
-- `stats` counts grouped and parked jobs, so counting them does not walk their lists.

-- Puts a group's job in its list: at the leasing end when `front` (a job put back), else at
-- the far end (a new job).
local function to_group(base, id, g, front)
  if front then
    redis.call('RPUSH', base .. ':g:' .. g, id)
  else
    redis.call('LPUSH', base .. ':g:' .. g, id)
  end
  redis.call('HINCRBY', base .. ':stats', 'grouped', 1)
  if redis.call('SADD', base .. ':gset', g) == 1 then
    local ring = base .. ':gring'
    if redis.call('LLEN', ring) == 0 then
      redis.call('LPUSH', ring, '')
      redis.call('SADD', base .. ':prios', 'g')
    end
    redis.call('LPUSH', ring, g)
  end
end

-- Puts job `id` back in its ready list, at the leasing end (RPUSH): a job that was already
-- due or running goes before the ones queued after it.
local function requeue(base, ready, id)
  local f = redis.call('HMGET', base .. ':job:' .. id, 'prio', 'group')
  if f[2] then return to_group(base, id, f[2], true) end
  local list = ready
  if f[1] then
    list = base .. ':ready:' .. f[1]
    redis.call('SADD', base .. ':prios', f[1])
  end
  redis.call('RPUSH', list, id)
end

-- Frees the concurrency slot job `id` held and wakes the oldest job still waiting for one.
-- Returns 1 if a job was woken.
local function free_slot(base, ready, id)
  local ck = redis.call('HGET', base .. ':job:' .. id, 'ckey')
  if not ck then return 0 end
  local held, wait = base .. ':ck:' .. ck, base .. ':ckw:' .. ck
  redis.call('SREM', held, id)
  local woken = 0
  -- Bounded: waiters cancelled while parked are dropped here, a hundred at most per call
  -- (the reaper's sweep wakes the rest).
  for _ = 1, 100 do
    local next_id = redis.call('RPOP', wait)
    if not next_id then break end
    redis.call('HINCRBY', base .. ':stats', 'parked', -1)
    if redis.call('HGET', base .. ':job:' .. next_id, 'state') == 'queued' then
      requeue(base, ready, next_id)
      woken = 1
      break
    end
  end
  if woken == 0 and redis.call('SCARD', held) == 0 and redis.call('LLEN', wait) == 0 then
    redis.call('SREM', base .. ':ckeys', ck)
  end
  return woken
end

-- A lease member ends with '!' when its job holds a concurrency slot: acking a job without
-- one costs no lookup.
local function holds_slot(member)
  return string.byte(member, -1) == 33
end

-- A lease member holds '*' when its job belongs to a batch.
local function in_batch(member)
  return string.find(member, '*', 1, true) ~= nil
end

-- Reports a batch job's final state on the queue's `batchdone` list, in the same step that
-- finished it: the batch pump moves it to PostgreSQL, which counts it once.
local function batch_done(base, id, state)
  local b = redis.call('HGET', base .. ':job:' .. id, 'batch')
  if b then redis.call('RPUSH', base .. ':batchdone', b .. '|' .. id .. '|' .. state) end
end
