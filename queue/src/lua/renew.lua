-- Extend leases. KEYS: inflight. ARGV: base, now_ms, lease_ms, n, then id, lease member per job.
-- Returns {lost..., '', cancelled...}: jobs this worker no longer owns, and jobs an operator
-- asked to cancel.
local base, now, lease, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lost, cancelled = {}, {}
for i = 0, n - 1 do
  local id, member = ARGV[5 + i * 2], ARGV[6 + i * 2]
  -- XX: never re-create a lease the reaper took back. CH: count the score change as proof.
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, member) == 0 then
    lost[#lost + 1] = id
  elseif redis.call('HEXISTS', base .. ':job:' .. id, 'cancel') == 1 then
    cancelled[#cancelled + 1] = id
  end
end
lost[#lost + 1] = ''
for _, id in ipairs(cancelled) do lost[#lost + 1] = id end
return lost
