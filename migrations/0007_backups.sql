-- The backup manifest: one row per backup attempt, kept after its file is deleted so the
-- history of what was taken, verified and pruned stays readable.
CREATE TABLE backups (
    id              uuid PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    store           text NOT NULL,
    location        text NOT NULL,
    size_bytes      bigint,
    -- SHA-256 of the stored (encrypted) bytes.
    sha256          text,
    pg_dump_version text,
    server_version  text,
    database        text NOT NULL,
    -- What the source held in the dump's snapshot: SHA-256 of its schema-only dump, and per
    -- table a row count and an order-independent content hash. Restore drills compare to these.
    schema_sha256   text,
    tables          jsonb,
    error           text,
    verify_status   text CHECK (verify_status IN ('verified', 'failed')),
    verified_at     timestamptz,
    verify_error    text,
    -- Set when retention removed the file.
    deleted_at      timestamptz,
    deleted_reason  text
);

CREATE INDEX backups_started_at ON backups (started_at DESC);
