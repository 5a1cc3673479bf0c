-- Job history: one row per job, the record operators and the status endpoint read once the
-- job's Redis keys have expired. Written in batches by the workers, never per job.
CREATE TABLE job_history (
    id            uuid PRIMARY KEY,
    queue         text        NOT NULL,
    kind          text        NOT NULL,
    payload       jsonb,
    state         text        NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'succeeded', 'retrying', 'dead', 'cancelled')),
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts  integer     CHECK (max_attempts >= 1),
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text,
    result        jsonb,
    worker        text,
    submitted_by  text,
    -- State transitions, oldest first: {state, attempt, at, error, worker}. A job that
    -- succeeds on its first attempt adds none: its columns say all there is, and skipping the
    -- JSON build is a quarter of the write cost at tens of thousands of jobs a second.
    events        jsonb       NOT NULL DEFAULT '[]'::jsonb
);

-- Operators list by queue and state, newest first. Further indexes come with the queries
-- that need them: each one is paid on every job.
CREATE INDEX job_history_queue_state_created ON job_history (queue, state, created_at DESC);
