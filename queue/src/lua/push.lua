-- Push jobs. KEYS: ready, scheduled. ARGV: base, idem_ttl_s, wake_channel, n,
-- then 8 fields per job: id, idempotency key ('' = none), kind, payload, max_attempts,
-- delay_ms (0 = now; a duration, made a due time by Redis's clock), timeout_ms, flow: '' for the defaults (most jobs, so they pay nothing
-- to parse), else 12 fields joined by \31: priority, dedupe mode ('' = none), dedupe
-- window_ms, dedupe key, concurrency key, concurrency limit, group, rate key, rate interval_us,
-- rate burst, batch id, traceparent ('' where unused). Where a queued job waits: see ready.lua.
-- Returns the id of each job: an existing id when its idempotency key was seen before, and
-- '~' .. an existing id when an earlier job under its dedupe key absorbed it.
local base, idem_ttl, channel, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local now = redis_now_ms()
local jp = base .. ':job:'
local out, ready, readied = {}, {}, 0
-- Ready ids of the other priorities, by priority.
local lists = {}
-- How long a pending-mode key outlives its push: the key is only a pointer (the job's state
-- decides), so this bounds garbage, not correctness.
local PENDING_TTL_MS = 30 * 24 * 3600 * 1000
local UNFINISHED = {scheduled = true, queued = true, running = true, retrying = true}

-- The job an earlier push under dedupe key `dk` left to absorb this one (its id), or nil.
local function absorbed_by(dk, mode, window, payload)
  local prev = redis.call('GET', dk)
  if not prev then return nil end
  local pk = jp .. prev
  local state = redis.call('HGET', pk, 'state')
  if mode == 'throttle' then
    -- The key's own expiry is the window.
    return prev
  elseif mode == 'pending' then
    if UNFINISHED[state] then return prev end
  elseif state == 'scheduled' then
    -- Debounce, the job still waiting: the last payload wins and the start moves back.
    local run_at = now + window
    redis.call('HSET', pk, 'payload', payload, 'run_at', run_at)
    redis.call('ZADD', KEYS[2], 'XX', run_at, prev)
    redis.call('PEXPIRE', dk, window + 60000)
    return prev
  end
  return nil
end

for i = 0, n - 1 do
  local o = 5 + i * 8
  local id, idem, delay = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 5])
  local run_at = 0
  if delay > 0 then run_at = now + delay end
  local prio, dkey, dmode, dwindow, group = '5', '', '', 0, ''
  local flow, f = ARGV[o + 7], nil
  if flow ~= '' then
    f = {}
    local from = 1
    for _ = 1, 11 do
      local sep = string.find(flow, '\31', from, true)
      f[#f + 1] = string.sub(flow, from, sep - 1)
      from = sep + 1
    end
    f[#f + 1] = string.sub(flow, from)
    prio, dmode, dwindow, dkey, group = f[1], f[2], tonumber(f[3]) or 0, f[4], f[7]
  end
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
  local dk = nil
  if not existing and dmode ~= '' then
    dk = base .. ':dedupe:' .. dkey
    local prev = absorbed_by(dk, dmode, dwindow, ARGV[o + 3])
    if prev then
      out[#out + 1] = '~' .. prev
      existing = true
    elseif dmode == 'debounce' then
      run_at = math.max(run_at, now + dwindow)
    end
  end
  if not existing then
    local jk = jp .. id
    local state = 'queued'
    if run_at > now then state = 'scheduled' end
    redis.call('HSET', jk, 'kind', ARGV[o + 2], 'payload', ARGV[o + 3], 'attempts', 0,
      'max_attempts', ARGV[o + 4], 'state', state, 'created_at', now, 'timeout_ms', ARGV[o + 6])
    if idem ~= '' then redis.call('HSET', jk, 'idem', idem) end
    if prio ~= '5' then redis.call('HSET', jk, 'prio', prio) end
    if f then
      -- `gate`: the lease must check a concurrency slot or a rate first.
      if f[5] ~= '' then redis.call('HSET', jk, 'ckey', f[5], 'climit', f[6], 'gate', 1) end
      if group ~= '' then redis.call('HSET', jk, 'group', group) end
      if f[8] ~= '' then redis.call('HSET', jk, 'rkey', f[8], 'rint', f[9], 'rburst', f[10], 'gate', 1) end
      if f[11] ~= '' then redis.call('HSET', jk, 'batch', f[11]) end
      if f[12] ~= '' then redis.call('HSET', jk, 'tp', f[12]) end
    end
    if dk then
      local ttl = PENDING_TTL_MS
      if dmode == 'throttle' then ttl = dwindow elseif dmode == 'debounce' then ttl = dwindow + 60000 end
      redis.call('SET', dk, id, 'PX', ttl)
      redis.call('HSET', jk, 'dedupe', dkey)
    end
    if state == 'scheduled' then
      redis.call('HSET', jk, 'run_at', run_at)
      redis.call('ZADD', KEYS[2], run_at, id)
    elseif group ~= '' then
      to_group(base, id, group, false)
      readied = readied + 1
    elseif prio == '5' then
      ready[#ready + 1] = id
    else
      if not lists[prio] then lists[prio] = {} end
      local l = lists[prio]
      l[#l + 1] = id
      readied = readied + 1
    end
    out[#out + 1] = id
  end
end
-- unpack() is bounded by Lua's C stack: push in fixed chunks so any batch size works.
for i = 1, #ready, 500 do
  redis.call('LPUSH', KEYS[1], unpack(ready, i, math.min(i + 499, #ready)))
end
for prio, ids in pairs(lists) do
  redis.call('SADD', base .. ':prios', prio)
  for i = 1, #ids, 500 do
    redis.call('LPUSH', base .. ':ready:' .. prio, unpack(ids, i, math.min(i + 499, #ids)))
  end
end
readied = readied + #ready
if readied > 0 then redis.call('PUBLISH', channel, readied) end
return out
