-- One clock: every time decision in these scripts (a lease's expiry, a job falling due, a rate's
-- arrival time, a retry's and a debounce's start) takes Redis's time, never the calling
-- process's, so a worker or an API whose clock runs fast or slow can neither start a delayed
-- job early nor take a live lease. Callers pass durations, which the scripts turn into times.
-- TIME before writes is allowed: scripts replicate their effects (the only mode since Redis 7).
local function redis_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
