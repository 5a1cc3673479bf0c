-- When each diagnostic execution ran, start to end: the flow-control tests check from these
-- spans that a concurrency limit was never exceeded. `at` is the start.
ALTER TABLE diag_effects ADD COLUMN ended_at timestamptz;
