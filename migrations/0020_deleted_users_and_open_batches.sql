-- Deleted users, kept by id: a token confined to a user and issued before the user was deleted
-- can neither read nor recreate that id (a service token may recreate it; tokens minted for the
-- new user after that work). The data-protection issue's erasure record can grow from this.
CREATE TABLE deleted_users (
    id         bigint      PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Open batches per caller are capped (NIGHTSHIFT_MAX_OPEN_BATCHES): counted through this.
CREATE INDEX batches_open_by_caller ON batches (submitted_by, submitted_user) WHERE sealed_at IS NULL;
