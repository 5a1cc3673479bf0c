-- One row per nightly cashflow run (its batch), written once by the run's completion callback.
CREATE TABLE cashflow_runs (
    batch_id    uuid        PRIMARY KEY REFERENCES batches (id) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    -- Users the run pushed, users stored by it, users of pages that died.
    users       integer     NOT NULL,
    projected   integer     NOT NULL,
    failed      integer     NOT NULL,
    jobs        integer     NOT NULL,
    dead_jobs   integer     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cashflow_runs_started ON cashflow_runs (started_at DESC);
