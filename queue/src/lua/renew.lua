-- Extend leases. KEYS: inflight. ARGV: base, now_ms, lease_ms, n, then id, token per job.
-- Returns {lost..., '', cancelled...}: jobs this worker no longer owns, and jobs an operator
-- asked to cancel.
local base, now, lease, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lost, cancelled = {}, {}
for i = 0, n - 1 do
  local id, token = ARGV[5 + i * 2], ARGV[6 + i * 2]
  local f = redis.call('HMGET', base .. ':job:' .. id, 'lease', 'cancel')
  if f[1] ~= token then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    if f[2] then cancelled[#cancelled + 1] = id end
  end
end
lost[#lost + 1] = ''
for _, id in ipairs(cancelled) do lost[#lost + 1] = id end
return lost
