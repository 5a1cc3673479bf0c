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
    -- State transitions, oldest first: {state, attempt, at, error, worker}.
    events        jsonb       NOT NULL DEFAULT '[]'::jsonb
);

CREATE INDEX job_history_queue_state_created ON job_history (queue, state, created_at DESC);
CREATE INDEX job_history_kind_created ON job_history (kind, created_at DESC);
