-- Every Redis server (by its run id) the platform has worked against, per key prefix. A run id
-- not in this table is a server that restarted or took over in a failover: the jobs of the last
-- minutes it may lack are re-derived from job_history, once, by whichever process sees it
-- first, even one started after the switch (a process's own memory of the last run id is lost
-- when a fleet restarts as a whole). The second pass runs 10 s after the first, for a job whose
-- history row landed late.
CREATE TABLE redis_runs (
    prefix          text        NOT NULL,
    run_id          text        NOT NULL,
    first_pass_at   timestamptz NOT NULL DEFAULT now(),
    second_pass_at  timestamptz,
    PRIMARY KEY (prefix, run_id)
);
