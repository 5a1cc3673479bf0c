-- Trims the batch events a pump has recorded, only while it still holds the pump lock: a pump
-- that stalled past its lock leaves them for the one that took over (recording is idempotent,
-- trimming what another has not read is not).
-- KEYS[1] the queue's batchdone list, KEYS[2] its pump lock; ARGV[1] the pump, ARGV[2] how many
-- it read. Returns 1 when trimmed, 0 when the lock is another's.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('DEL', KEYS[2])
return 1
