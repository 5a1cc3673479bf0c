-- Operator actions on one job. KEYS: ready, scheduled, retry, dead, done. ARGV: base, action
-- (retry | cancel | discard), id, wake_channel.
-- Returns the job's resulting state, or 'missing' / 'invalid:<state>'.
local base, action, id, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = redis_now_ms()
local jk = base .. ':job:' .. id
local f = redis.call('HMGET', jk, 'state', 'attempts', 'max_attempts')
local state = f[1]
if not state then return 'missing' end
local sets = {scheduled = KEYS[2], retrying = KEYS[3], dead = KEYS[4]}

-- A job cancelled while it waited left its id in its list (a lease skips such an id: O(1),
-- where taking it out at the cancel is O(n)). A retry by hand takes it out before listing the
-- job again, so the job is listed, counted and leased once.
local function unlist(id)
  local f = redis.call('HMGET', jk, 'prio', 'group', 'ckey')
  if f[2] then
    if redis.call('LREM', base .. ':g:' .. f[2], -1, id) > 0 then
      redis.call('HINCRBY', base .. ':stats', 'grouped', -1)
    end
  else
    redis.call('LREM', f[1] and (base .. ':ready:' .. f[1]) or KEYS[1], -1, id)
  end
  if f[3] and redis.call('LREM', base .. ':ckw:' .. f[3], -1, id) > 0 then
    redis.call('HINCRBY', base .. ':stats', 'parked', -1)
  end
end

if action == 'retry' then
  if state ~= 'dead' and state ~= 'retrying' and state ~= 'scheduled' and state ~= 'cancelled' then
    return 'invalid:' .. state
  end
  if sets[state] then redis.call('ZREM', sets[state], id) end
  redis.call('ZREM', KEYS[5], id)
  -- As Oban does: a job retried by hand gets at least one more attempt.
  local max = math.max(tonumber(f[3]), tonumber(f[2]) + 1)
  redis.call('HSET', jk, 'state', 'queued', 'max_attempts', max)
  redis.call('HDEL', jk, 'cancel', 'finished_at')
  if state == 'cancelled' then unlist(id) end
  requeue(base, KEYS[1], id)
  redis.call('PUBLISH', channel, 1)
  return 'queued'
elseif action == 'cancel' then
  if state == 'running' then
    redis.call('HSET', jk, 'cancel', '1')
    return 'running'
  end
  if state ~= 'queued' and not sets[state] then return 'invalid:' .. state end
  if sets[state] then redis.call('ZREM', sets[state], id) end
  redis.call('HSET', jk, 'state', 'cancelled', 'finished_at', now, 'error', 'cancelled by operator')
  redis.call('ZADD', KEYS[5], now, id)
  batch_done(base, id, 'cancelled')
  return 'cancelled'
elseif action == 'discard' then
  if state ~= 'dead' and state ~= 'cancelled' and state ~= 'succeeded' then return 'invalid:' .. state end
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('DEL', jk)
  return 'discarded'
end
return 'invalid:' .. action
