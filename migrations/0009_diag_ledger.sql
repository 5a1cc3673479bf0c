-- The fenced effect ledger of `diag.effect` jobs given a business key: the key's "done" row and
-- the effect commit in one transaction, so a job run twice (a killed worker, a stalled worker
-- whose lease was taken back) applies its effect once. `diag_effects` still gets one row per
-- execution: the chaos runner counts duplicate executions there (allowed) and duplicate
-- effects here (never).
CREATE TABLE diag_ledger_keys (
    business_key text        PRIMARY KEY,
    job_id       uuid        NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE diag_ledger (
    id           bigserial   PRIMARY KEY,
    business_key text        NOT NULL,
    job_id       uuid        NOT NULL,
    attempt      integer     NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX diag_ledger_key ON diag_ledger (business_key);
