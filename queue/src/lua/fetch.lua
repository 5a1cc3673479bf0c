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

local function promote_from(set)
  local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, promote)
  for i = 1, #due, 500 do
    local last = math.min(i + 499, #due)
    redis.call('ZREM', set, unpack(due, i, last))
    redis.call('RPUSH', KEYS[1], unpack(due, i, last))
  end
  for _, id in ipairs(due) do
    redis.call('HSET', jp .. id, 'state', 'queued')
  end
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
local ids = redis.call('RPOP', KEYS[1], count)
if ids then
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
