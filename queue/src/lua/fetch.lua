-- Lease up to `count` jobs. KEYS: ready, scheduled, retry, inflight, paused.
-- ARGV: base, lease_ms, count, worker, promote_batch.
-- First promotes at most `promote_batch` due jobs from each of scheduled and retry (bounded
-- work per call whatever the backlog), then pops. The in-flight member is `id|worker#attempt`:
-- the member itself is the lease's fencing token, so acking is one ZREM.
-- A job with a concurrency key or a rate key (`gate`) is leased only if its key has a free
-- slot (else it waits in the key's list, see ready.lua) and its rate allows it now (else it
-- is scheduled for the time the rate reserves for it): neither counts as an attempt.
-- Returns {next_due_in_ms, now_ms, fields...} with 9 fields per leased job: id, kind, payload,
-- attempt, max_attempts, created_at, timeout_ms, traceparent ('' if none), lease flags ('*' for
-- a batch job, then '!' when it holds a concurrency slot), which end its lease member.
-- next_due_in_ms (a duration: the caller sleeps by its own clock, never compares times) is -1
-- when nothing is scheduled, and is only computed when nothing was leased; now_ms is the time
-- the jobs were leased at.
local base, lease, count, worker, promote =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now = redis_now_ms()
local jp = base .. ':job:'
local prios = base .. ':prios'

-- Due jobs to the popping end of their priority's ready list: they run next within it.
local function promote_from(set)
  local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, promote)
  if #due == 0 then return end
  local lists = {}
  for i = 1, #due, 500 do
    redis.call('ZREM', set, unpack(due, i, math.min(i + 499, #due)))
  end
  for _, id in ipairs(due) do
    local jk = jp .. id
    local f = redis.call('HMGET', jk, 'prio', 'group')
    redis.call('HSET', jk, 'state', 'queued')
    if f[2] then
      to_group(base, id, f[2], true)
    else
      local p = f[1] or '5'
      if not lists[p] then lists[p] = {} end
      local l = lists[p]
      l[#l + 1] = id
    end
  end
  for p, ids in pairs(lists) do
    local list = KEYS[1]
    if p ~= '5' then
      list = base .. ':ready:' .. p
      redis.call('SADD', prios, p)
    end
    for i = 1, #ids, 500 do
      redis.call('RPUSH', list, unpack(ids, i, math.min(i + 499, #ids)))
    end
  end
end

-- Up to `want` ids from the groups' ring, one per group in turn ('' is the `ready` list).
local function pop_ring(want)
  local ring = base .. ':gring'
  local ids, misses, emptied = {}, 0, false
  while #ids < want do
    local g = redis.call('LMOVE', ring, ring, 'RIGHT', 'LEFT')
    if not g then break end
    local id
    if g == '' then
      id = redis.call('RPOP', KEYS[1])
    else
      id = redis.call('RPOP', base .. ':g:' .. g)
      if id then redis.call('HINCRBY', base .. ':stats', 'grouped', -1) end
    end
    if id then
      ids[#ids + 1] = id
      misses = 0
    else
      if g ~= '' then
        -- Just moved to the head: LREM finds it at once.
        redis.call('LREM', ring, 1, g)
        redis.call('SREM', base .. ':gset', g)
        emptied = true
      end
      misses = misses + 1
      if misses > redis.call('LLEN', ring) then break end
    end
  end
  if emptied and redis.call('LLEN', ring) <= 1 then
    redis.call('DEL', ring)
    redis.call('SREM', prios, 'g')
  end
  return ids
end

-- Up to `count` ids, the lowest priority number first, oldest first within one. Priority 5
-- is KEYS[1] (and the groups, while there are any); the others are lists named in the
-- `prios` set, which a list leaves once empty. Without priorities or groups in use this is
-- one SMEMBERS of an empty set more than a single RPOP.
local function pop(count)
  local ps = redis.call('SMEMBERS', prios)
  if #ps == 0 then return redis.call('RPOP', KEYS[1], count) or {} end
  local grouped = false
  local nums = {}
  for _, p in ipairs(ps) do
    if p == 'g' then grouped = true else nums[#nums + 1] = p end
  end
  table.sort(nums, function(a, b) return tonumber(a) < tonumber(b) end)
  local order, placed = {}, false
  for _, p in ipairs(nums) do
    if not placed and tonumber(p) > 5 then
      order[#order + 1] = '5'
      placed = true
    end
    order[#order + 1] = p
  end
  if not placed then order[#order + 1] = '5' end
  local ids = {}
  for _, p in ipairs(order) do
    local want = count - #ids
    if want <= 0 then break end
    local got
    if p == '5' and grouped then
      got = pop_ring(want)
    else
      local list = KEYS[1]
      if p ~= '5' then list = base .. ':ready:' .. p end
      got = redis.call('RPOP', list, want) or {}
      if p ~= '5' and #got < want then redis.call('SREM', prios, p) end
    end
    for _, id in ipairs(got) do ids[#ids + 1] = id end
  end
  return ids
end

-- Whether the rate of key `rk` lets a job start now (GCRA, as common/src/rate.rs): 0 if so,
-- else the time reserved for it, which the job is scheduled for. Reserving spaces the delayed
-- jobs one interval apart, so they come back one at a time instead of all at once.
local function rate_start(rk, interval_us, burst)
  local key = base .. ':rate:' .. rk
  local interval = tonumber(interval_us) / 1000
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  local start = new_tat - tonumber(burst) * interval
  if start <= now then return 0 end
  return math.ceil(start)
end

-- For a gated job: '' to lease it without a slot, '!' with one, nil when it must wait (it is
-- then parked or scheduled here).
local function pass_gate(id, jk)
  local g = redis.call('HMGET', jk, 'ckey', 'climit', 'rkey', 'rint', 'rburst', 'rok')
  local held
  if g[1] then
    held = base .. ':ck:' .. g[1]
    if redis.call('SCARD', held) >= tonumber(g[2]) then
      redis.call('LPUSH', base .. ':ckw:' .. g[1], id)
      redis.call('SADD', base .. ':ckeys', g[1])
      redis.call('HINCRBY', base .. ':stats', 'parked', 1)
      return nil
    end
  end
  if g[3] then
    if g[6] then
      redis.call('HDEL', jk, 'rok')
    else
      local start = rate_start(g[3], g[4], g[5])
      if start > 0 then
        -- `rok`: its start was reserved, so it passes the rate when it comes back.
        redis.call('HSET', jk, 'state', 'scheduled', 'run_at', start, 'rok', 1)
        redis.call('ZADD', KEYS[2], start, id)
        return nil
      end
    end
  end
  if held then
    redis.call('SADD', held, id)
    redis.call('SADD', base .. ':ckeys', g[1])
    return '!'
  end
  return ''
end

local function next_due_in()
  local best = -1
  for _, set in ipairs({KEYS[2], KEYS[3]}) do
    local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    if first[2] then
      local s = tonumber(first[2])
      if best < 0 or s < best then best = s end
    end
  end
  if best < 0 then return '-1' end
  return tostring(math.max(0, best - now))
end

if redis.call('EXISTS', KEYS[5]) == 1 then return {next_due_in(), tostring(now)} end
promote_from(KEYS[2])
promote_from(KEYS[3])

local out = {'', tostring(now)}
local expiry = now + lease
local z = {}
local leased, held_back, popped = 0, 0, 0
-- Jobs that wait for a slot or a rate leave the lease short: pop again, up to four batches'
-- worth in all, so one call's work stays bounded.
while leased < count and popped < count * 4 do
  local ids = pop(count - leased)
  if #ids == 0 then break end
  popped = popped + #ids
  for _, id in ipairs(ids) do
    local jk = jp .. id
    local f = redis.call('HMGET', jk, 'state', 'kind', 'payload', 'attempts', 'max_attempts', 'created_at', 'timeout_ms', 'gate', 'batch', 'tp')
    -- A cancelled job stays in the list (removing it would be O(n)); skip it here.
    if f[1] == 'queued' then
      local slot = ''
      if f[8] then slot = pass_gate(id, jk) end
      if slot then
        if f[9] then slot = '*' .. slot end
        local attempt = tonumber(f[4]) + 1
        redis.call('HSET', jk, 'state', 'running', 'attempts', attempt, 'started_at', now, 'worker', worker)
        z[#z + 1] = expiry
        z[#z + 1] = id .. '|' .. worker .. '#' .. attempt .. slot
        local n = #out
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, f[2], f[3], tostring(attempt)
        out[n + 5], out[n + 6], out[n + 7], out[n + 8], out[n + 9] = f[5], f[6], f[7], f[10] or '', slot
        leased = leased + 1
      else
        held_back = held_back + 1
      end
    end
  end
end
for i = 1, #z, 500 do
  redis.call('ZADD', KEYS[4], unpack(z, i, math.min(i + 499, #z)))
end
if #out == 2 then
  -- Stopped by the bound with jobs still ready: ask again at once.
  if held_back > 0 and popped >= count * 4 then out[1] = '0' else out[1] = next_due_in() end
end
return out
