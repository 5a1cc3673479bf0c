-- Which Redis dataset the platform is on. The same random epoch is kept in Redis
-- (`<prefix>:epoch`) and here; a Redis that comes back without it (restarted empty, or a
-- replica that never had it) has lost queued work, which is then re-derived from job_history.
CREATE TABLE redis_epoch (
    prefix       text        PRIMARY KEY,
    epoch        text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
