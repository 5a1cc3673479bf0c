-- Lease up to `count` jobs. KEYS: ready, scheduled, retry, inflight, paused.
-- ARGV: base, now_ms, lease_ms, count, worker, promote_batch.
-- First promotes at most `promote_batch` due jobs from each of scheduled and retry (bounded
-- work per call whatever the backlog), then pops. The in-flight member is `id|worker#attempt`:
-- the member itself is the lease's fencing token, so acking is one ZREM.
-- Returns {next_due_ms, fields...} with 6 fields per leased job: id, kind, payload, attempt,
-- max_attempts, created_at, timeout_ms. next_due_ms is -1 when nothing is scheduled, and is
-- only computed when nothing was leased.
local base, now, lease, count, worker, promote =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
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
    local p = redis.call('HGET', jk, 'prio') or '5'
    redis.call('HSET', jk, 'state', 'queued')
    if not lists[p] then lists[p] = {} end
    local l = lists[p]
    l[#l + 1] = id
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

-- Up to `count` ids, the lowest priority number first, oldest first within one. Priority 5
-- is KEYS[1]; the others are lists named in the `prios` set, which a list leaves once empty.
-- Without priorities in use this is one SMEMBERS of an empty set more than a single RPOP.
local function pop(count)
  local ps = redis.call('SMEMBERS', prios)
  if #ps == 0 then return redis.call('RPOP', KEYS[1], count) or {} end
  table.sort(ps, function(a, b) return tonumber(a) < tonumber(b) end)
  local order, placed = {}, false
  for _, p in ipairs(ps) do
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
    local list = KEYS[1]
    if p ~= '5' then list = base .. ':ready:' .. p end
    local got = redis.call('RPOP', list, want) or {}
    for _, id in ipairs(got) do ids[#ids + 1] = id end
    if p ~= '5' and #got < want then redis.call('SREM', prios, p) end
  end
  return ids
end

local function next_due()
  local best = -1
  for _, set in ipairs({KEYS[2], KEYS[3]}) do
    local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    if first[2] then
      local s = tonumber(first[2])
      if best < 0 or s < best then best = s end
    end
  end
  return tostring(best)
end

if redis.call('EXISTS', KEYS[5]) == 1 then return {next_due()} end
promote_from(KEYS[2])
promote_from(KEYS[3])

local out = {''}
local ids = pop(count)
if #ids > 0 then
  local expiry = now + lease
  local z = {}
  for _, id in ipairs(ids) do
    local jk = jp .. id
    local f = redis.call('HMGET', jk, 'state', 'kind', 'payload', 'attempts', 'max_attempts', 'created_at', 'timeout_ms')
    -- A cancelled job stays in the list (removing it would be O(n)); skip it here.
    if f[1] == 'queued' then
      local attempt = tonumber(f[4]) + 1
      redis.call('HSET', jk, 'state', 'running', 'attempts', attempt, 'started_at', now, 'worker', worker)
      z[#z + 1] = expiry
      z[#z + 1] = id .. '|' .. worker .. '#' .. attempt
      local n = #out
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, f[2], f[3], tostring(attempt)
      out[n + 5], out[n + 6], out[n + 7] = f[5], f[6], f[7]
    end
  end
  for i = 1, #z, 500 do
    redis.call('ZADD', KEYS[4], unpack(z, i, math.min(i + 499, #z)))
  end
end
if #out == 1 then out[1] = next_due() end
return out
