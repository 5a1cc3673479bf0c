-- The scheduler's tick ledger: one row per (schedule, tick), whatever the number of scheduler
-- replicas. Every tick is accounted for: fired on time, fired late, coalesced into a later
-- run, skipped by its misfire policy or while paused, or skipped because the previous run of
-- a no-overlap schedule was still unfinished; never silently missing.
CREATE TABLE schedule_ticks (
    schedule     text        NOT NULL,
    tick         timestamptz NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('fired', 'fired_late', 'coalesced', 'skipped', 'overlapped')),
    job_id       uuid,
    lag_ms       bigint      NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick),
    CHECK ((outcome IN ('fired', 'fired_late')) = (job_id IS NOT NULL))
);

-- Operators pause and resume schedules at run time; every replica reads this before a pass.
-- A paused schedule's ticks are recorded as skipped.
CREATE TABLE schedule_state (
    schedule    text        PRIMARY KEY,
    paused      boolean     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL
);
