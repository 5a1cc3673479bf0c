-- Who may read a job, and the request key it was enqueued under.
-- submitted_user: the user a user-confined token acts for; NULL for service tokens. A job it
-- enqueued is read by that token (same subject, same user) and by service tokens of the same
-- subject, never by a token confined to another user.
-- idempotency_key: the caller-namespaced Idempotency-Key; Redis maps keys per queue, and this
-- column finds a key reused for a kind of another queue (a 422, not a second job).
ALTER TABLE job_history ADD COLUMN submitted_user bigint;
ALTER TABLE job_history ADD COLUMN idempotency_key text;
-- Partial: only jobs enqueued with a key pay for the index.
CREATE INDEX job_history_idempotency_key ON job_history (idempotency_key) WHERE idempotency_key IS NOT NULL;
