-- Extend leases. KEYS: inflight. ARGV: base, lease_ms, n, then id, lease member per job.
-- Returns {lost..., '', cancelled...}: jobs this worker no longer owns, and jobs an operator
-- asked to cancel.
local base, lease, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = redis_now_ms()
local lost, cancelled = {}, {}
for i = 0, n - 1 do
  local id, member = ARGV[4 + i * 2], ARGV[5 + i * 2]
  -- Ownership is the member's presence, not ZADD's CH count: a renewal in the same millisecond
  -- as the fetch leaves the score unchanged, and reading that as "lost" would abort a job this
  -- worker still owns, and its ack would then record it cancelled. XX: never re-create a lease
  -- the reaper took back.
  if not redis.call('ZSCORE', KEYS[1], member) then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', KEYS[1], 'XX', now + lease, member)
    if redis.call('HEXISTS', base .. ':job:' .. id, 'cancel') == 1 then
      cancelled[#cancelled + 1] = id
    end
  end
end
lost[#lost + 1] = ''
for _, id in ipairs(cancelled) do lost[#lost + 1] = id end
return lost
