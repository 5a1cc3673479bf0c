-- Who did what, for operators and auditors: every operator action through the API or the CLI.
CREATE TABLE audit_log (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- A token's subject, or `cli:<user>`.
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_target ON audit_log (target, at DESC);

-- Append-only: rows are never changed or removed, whoever asks.
CREATE RULE audit_log_no_update AS ON UPDATE TO audit_log DO INSTEAD NOTHING;
CREATE RULE audit_log_no_delete AS ON DELETE TO audit_log DO INSTEAD NOTHING;
