-- Push jobs. KEYS: ready, scheduled. ARGV: base, now_ms, idem_ttl_s, wake_channel, n,
-- then 7 fields per job: id, idempotency key ('' = none), kind, payload, max_attempts,
-- run_at_ms (0 = now), timeout_ms. Returns the id of each job, an existing id when its
-- idempotency key was seen before.
local base, now, idem_ttl, channel, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local out, ready = {}, {}
for i = 0, n - 1 do
  local o = 6 + i * 7
  local id, idem, run_at = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 5])
  local existing = false
  if idem ~= '' then
    local ikey = base .. ':idem:' .. idem
    local prev = redis.call('GET', ikey)
    if prev then
      out[#out + 1] = prev
      existing = true
    else
      redis.call('SET', ikey, id, 'EX', idem_ttl)
    end
  end
  if not existing then
    local jk = base .. ':job:' .. id
    local state = 'queued'
    if run_at > now then state = 'scheduled' end
    redis.call('HSET', jk, 'kind', ARGV[o + 2], 'payload', ARGV[o + 3], 'attempts', 0,
      'max_attempts', ARGV[o + 4], 'state', state, 'created_at', now, 'timeout_ms', ARGV[o + 6])
    if idem ~= '' then redis.call('HSET', jk, 'idem', idem) end
    if state == 'scheduled' then
      redis.call('HSET', jk, 'run_at', run_at)
      redis.call('ZADD', KEYS[2], run_at, id)
    else
      ready[#ready + 1] = id
    end
    out[#out + 1] = id
  end
end
-- unpack() is bounded by Lua's C stack: push in fixed chunks so any batch size works.
for i = 1, #ready, 500 do
  redis.call('LPUSH', KEYS[1], unpack(ready, i, math.min(i + 499, #ready)))
end
if #ready > 0 then redis.call('PUBLISH', channel, #ready) end
return out
