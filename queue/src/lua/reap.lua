-- Sweeps, under a short lock so one process does them at a time. KEYS: ready, inflight, dead,
-- stats, reaper lock, done. ARGV: base, batch, lock_ms, lock_owner, finished_ttl_ms,
-- wake_channel.
-- 1. Jobs whose lease expired (their worker died or stalled) go back to the queue; the attempt
--    was counted when leased, so a job at its maximum goes dead: a job that kills its worker
--    every time cannot loop forever.
-- 2. Finished jobs older than their TTL are deleted (PostgreSQL keeps their history).
-- Both at most `batch` per call. Returns 5 fields per reaped job: id, new state, attempts,
-- kind, worker that lost it.
local base, batch, lock_ms, owner, ttl, channel =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local now = redis_now_ms()
if not redis.call('SET', KEYS[5], owner, 'NX', 'PX', lock_ms) then return {} end
local jp = base .. ':job:'
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, batch)
local out, requeued, dead = {}, 0, 0
for _, member in ipairs(members) do
  redis.call('ZREM', KEYS[2], member)
  local id = string.sub(member, 1, string.find(member, '|', 1, true) - 1)
  local jk = jp .. id
  -- A dead worker's slot frees with its lease.
  if holds_slot(member) then requeued = requeued + free_slot(base, KEYS[1], id) end
  local f = redis.call('HMGET', jk, 'state', 'attempts', 'max_attempts', 'kind', 'worker', 'cancel')
  if f[1] == 'running' then
    local err = 'lease expired: worker ' .. (f[5] or '?') .. ' stopped renewing'
    local state
    if f[6] then
      state = 'cancelled'
      redis.call('HSET', jk, 'state', state, 'finished_at', now, 'error', err)
      redis.call('ZADD', KEYS[6], now, id)
      batch_done(base, id, state)
    elseif tonumber(f[2]) >= tonumber(f[3]) then
      state = 'dead'
      dead = dead + 1
      redis.call('HSET', jk, 'state', state, 'finished_at', now, 'error', err)
      redis.call('ZADD', KEYS[3], now, id)
      batch_done(base, id, state)
    else
      state = 'queued'
      requeued = requeued + 1
      redis.call('HSET', jk, 'state', state, 'error', err)
      requeue(base, KEYS[1], id)
    end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = id, state, f[2], f[4], f[5] or ''
  end
end
if dead > 0 then redis.call('HINCRBY', KEYS[4], 'dead', dead) end

-- A slot freed without waking its waiters (a woken job cancelled and discarded before its
-- lease) would leave them parked for good: wake waiters of a few keys with free slots.
for _, ck in ipairs(redis.call('SRANDMEMBER', base .. ':ckeys', 20)) do
  local wait = base .. ':ckw:' .. ck
  local first = redis.call('LINDEX', wait, -1)
  if first then
    local limit = tonumber(redis.call('HGET', jp .. first, 'climit') or '1')
    if redis.call('SCARD', base .. ':ck:' .. ck) < limit then
      redis.call('RPOP', wait)
      redis.call('HINCRBY', KEYS[4], 'parked', -1)
      if redis.call('HGET', jp .. first, 'state') == 'queued' then
        requeue(base, KEYS[1], first)
        requeued = requeued + 1
      end
    end
  elseif redis.call('SCARD', base .. ':ck:' .. ck) == 0 then
    redis.call('SREM', base .. ':ckeys', ck)
  end
end
if requeued > 0 then redis.call('PUBLISH', channel, requeued) end

local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now - ttl, 'LIMIT', 0, batch)
for i = 1, #expired, 500 do
  local last = math.min(i + 499, #expired)
  local keys = {}
  for j = i, last do keys[#keys + 1] = jp .. expired[j] end
  redis.call('UNLINK', unpack(keys))
  redis.call('ZREM', KEYS[6], unpack(expired, i, last))
end
return out
