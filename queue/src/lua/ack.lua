-- Record outcomes. KEYS: ready, scheduled, retry, inflight, dead, stats.
-- ARGV: base, now_ms, finished_ttl_s, n, then 5 fields per job: id, lease token,
-- outcome (s = succeeded, r = retry, d = dead, c = cancelled), text (result or error), delay_ms.
-- An ack whose token no longer owns the job (its lease expired and was reaped) is refused:
-- the late worker's outcome must not overwrite the newer attempt. Returns one state per job
-- ('stale' for refused acks).
local base, now, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local counts = {succeeded = 0, retried = 0, dead = 0, cancelled = 0}

local function finish(jk, id, state, field, text)
  redis.call('HSET', jk, 'state', state, 'finished_at', now, 'lease', '')
  if text ~= '' then redis.call('HSET', jk, field, text) end
  if state == 'dead' then
    redis.call('ZADD', KEYS[5], now, id)
  else
    redis.call('EXPIRE', jk, ttl)
  end
end

for i = 0, n - 1 do
  local o = 5 + i * 5
  local id, token, outcome, text = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local jk = base .. ':job:' .. id
  local f = redis.call('HMGET', jk, 'lease', 'attempts', 'max_attempts', 'cancel')
  local state
  if f[1] ~= token then
    state = 'stale'
  else
    redis.call('ZREM', KEYS[4], id)
    if outcome == 'r' and f[4] then outcome = 'c' end
    if outcome == 'r' and tonumber(f[2]) >= tonumber(f[3]) then outcome = 'd' end
    if outcome == 's' then
      state = 'succeeded'
      finish(jk, id, state, 'result', text)
    elseif outcome == 'r' then
      state = 'retrying'
      redis.call('HSET', jk, 'state', state, 'error', text, 'finished_at', now, 'lease', '')
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[o + 4]), id)
      counts.retried = counts.retried + 1
    elseif outcome == 'd' then
      state = 'dead'
      finish(jk, id, state, 'error', text)
    else
      state = 'cancelled'
      finish(jk, id, state, 'error', text)
    end
    if counts[state] then counts[state] = counts[state] + 1 end
  end
  out[#out + 1] = state
end
for k, v in pairs(counts) do
  if v > 0 then redis.call('HINCRBY', KEYS[6], k, v) end
end
return out
