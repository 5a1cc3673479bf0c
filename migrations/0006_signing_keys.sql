-- The API's token signing keys. A token names its key (`kid`); the active key signs, and
-- keys rotated out keep verifying until `retire_after`. The secret is sealed with AES-256-GCM
-- under NIGHTSHIFT_MASTER_KEY (nonce || ciphertext, the kid as associated data): a database
-- dump alone cannot sign tokens.
CREATE TABLE signing_keys (
    kid           text        PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('active', 'previous', 'retired')),
    sealed        bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    retire_after  timestamptz,
    CHECK ((status = 'active') = (retire_after IS NULL))
);
-- At most one active key, whatever runs a rotation at the same time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
