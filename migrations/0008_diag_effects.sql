-- The effect ledger of diagnostic jobs (`diag.effect`): one row per successful execution,
-- deliberately unfenced, so a job whose effect happened twice shows as two rows. The scale-out
-- benchmark and the delivery tests count lost and duplicated effects here.
CREATE TABLE diag_effects (
    id      bigserial   PRIMARY KEY,
    job_id  uuid        NOT NULL,
    attempt integer     NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX diag_effects_job ON diag_effects (job_id);
