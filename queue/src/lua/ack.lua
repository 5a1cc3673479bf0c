-- Record outcomes. KEYS: ready, scheduled, retry, inflight, dead, stats, done.
-- ARGV: base, n, then 5 fields per job: id, lease member (`id|worker#attempt`),
-- outcome (s = succeeded, r = retry, d = dead, c = cancelled, z = snooze), text (result or
-- error), delay_ms. A snooze goes back to `scheduled` and returns the attempt it was leased with.
-- Removing the lease member is the fence: if the lease expired and was reaped, the member is
-- gone, and the late worker's outcome must not overwrite the newer attempt ('stale').
-- A job that held a concurrency slot frees it, waking the next job waiting for it.
-- Refused outcomes are counted in stats as `stale` (the chaos runner reports them).
-- Finished jobs go to `done` (scored by finish time); the sweeper deletes them after their TTL.
-- Returns {now_ms, state per job}: the time the outcomes were written at, then each outcome.
local base, n = ARGV[1], tonumber(ARGV[2])
local now = redis_now_ms()
local jp = base .. ':job:'
local out, done, woken = {tostring(now)}, {}, 0
local counts = {succeeded = 0, retried = 0, dead = 0, cancelled = 0, stale = 0}

for i = 0, n - 1 do
  local o = 3 + i * 5
  local id, member, outcome, text = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local state
  if redis.call('ZREM', KEYS[4], member) == 0 then
    state = 'stale'
    counts.stale = counts.stale + 1
  else
    local jk = jp .. id
    if holds_slot(member) then woken = woken + free_slot(base, KEYS[1], id) end
    if outcome ~= 's' then
      local f = redis.call('HMGET', jk, 'attempts', 'max_attempts', 'cancel')
      if (outcome == 'r' or outcome == 'z') and f[3] then outcome = 'c' end
      if outcome == 'r' and tonumber(f[1]) >= tonumber(f[2]) then outcome = 'd' end
    end
    if outcome == 's' then
      state = 'succeeded'
      if text ~= '' then
        redis.call('HSET', jk, 'state', state, 'finished_at', now, 'result', text)
      else
        redis.call('HSET', jk, 'state', state, 'finished_at', now)
      end
    elseif outcome == 'r' then
      state = 'retrying'
      redis.call('HSET', jk, 'state', state, 'error', text, 'finished_at', now)
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[o + 4]), id)
      counts.retried = counts.retried + 1
    elseif outcome == 'z' then
      state = 'scheduled'
      redis.call('HSET', jk, 'state', state, 'error', text)
      redis.call('HINCRBY', jk, 'attempts', -1)
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[o + 4]), id)
    elseif outcome == 'd' then
      state = 'dead'
      redis.call('HSET', jk, 'state', state, 'error', text, 'finished_at', now)
      redis.call('ZADD', KEYS[5], now, id)
    else
      state = 'cancelled'
      redis.call('HSET', jk, 'state', state, 'error', text, 'finished_at', now)
    end
    if state == 'succeeded' or state == 'cancelled' then
      done[#done + 1] = now
      done[#done + 1] = id
    end
    if (state == 'succeeded' or state == 'cancelled' or state == 'dead') and in_batch(member) then
      batch_done(base, id, state)
    end
    if counts[state] then counts[state] = counts[state] + 1 end
  end
  out[#out + 1] = state
end
for i = 1, #done, 500 do
  redis.call('ZADD', KEYS[7], unpack(done, i, math.min(i + 499, #done)))
end
if woken > 0 then redis.call('PUBLISH', base .. ':wake', woken) end
for k, v in pairs(counts) do
  if v > 0 then redis.call('HINCRBY', KEYS[6], k, v) end
end
return out
