-- Job history partitioned by day, on the id. Job ids are UUIDv7, so a day of jobs is one range
-- of ids: a status lookup by id still reads one partition's primary key, the dashboard's
-- newest-first pages read the newest partitions first, and retention drops a day as a table
-- instead of deleting its rows one by one (a day of a million jobs goes in milliseconds, and
-- leaves no dead tuples for vacuum to chase).
--
-- Ids outside every day's range (a day whose partition was not made in time, or an id that
-- is not a UUIDv7) land in the default partition, so an insert never fails for want of one.
-- Making a day's partition moves that day's rows out of the default first.

-- The smallest UUID of the UTC day `d`: every UUIDv7 made on or after that midnight is
-- greater or equal (the first 48 bits are the Unix time in milliseconds).
CREATE FUNCTION job_history_day_bound(d date) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (lpad(to_hex((extract(epoch FROM d::timestamp) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- Makes the partitions of the days from `first_day` to `last_day` (UTC) that are missing;
-- returns how many it made. The maintenance job calls it to stay a week ahead.
CREATE FUNCTION job_history_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    part text;
    made integer := 0;
BEGIN
    -- Every process runs this at start-up, and two may start at once: one at a time, so the
    -- second finds the first's partitions instead of failing to create them again.
    PERFORM pg_advisory_xact_lock(hashtext('nightshift job_history partitions'));
    FOR d IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        part := 'job_history_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        -- Writers keep writing to the other partitions; only the default one waits, so a
        -- row of this day cannot slip into it between the move and the attach.
        LOCK TABLE job_history_default IN SHARE ROW EXCLUSIVE MODE;
        EXECUTE format('CREATE TABLE %I (LIKE job_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM job_history_default WHERE id >= $1 AND id < $2 RETURNING *)
             INSERT INTO %I SELECT * FROM moved', part)
            USING job_history_day_bound(d), job_history_day_bound(d + 1);
        EXECUTE format('ALTER TABLE job_history ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            part, job_history_day_bound(d), job_history_day_bound(d + 1));
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- Retention: drops the partitions of the days before `cutoff` (UTC) and returns the number of
-- finished jobs they held. A job of such a day that has not finished (scheduled far ahead,
-- still retrying) is kept: it moves to the default partition, whose finished rows the
-- maintenance job deletes by row.
CREATE FUNCTION job_history_drop_partitions_before(cutoff date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    part text;
    total bigint;
    kept bigint;
    dropped bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('nightshift job_history partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'job_history'::regclass
          AND c.relname ~ '^job_history_p[0-9]{8}$'
          AND to_date(substr(c.relname, 14), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE job_history DETACH PARTITION %I', part);
        EXECUTE format('SELECT count(*) FROM %I', part) INTO total;
        EXECUTE format(
            'WITH k AS (INSERT INTO job_history SELECT * FROM %I
                        WHERE state NOT IN (''succeeded'', ''dead'', ''cancelled'') RETURNING 1)
             SELECT count(*) FROM k', part) INTO kept;
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + total - kept;
    END LOOP;
    RETURN dropped;
END
$$;

-- The table as it was, renamed with its indexes (index names are per schema), then copied.
ALTER TABLE job_history RENAME TO job_history_unpartitioned;
ALTER INDEX job_history_pkey RENAME TO job_history_unpartitioned_pkey;
ALTER INDEX job_history_queue_state_created RENAME TO job_history_unpartitioned_queue_state_created;
ALTER INDEX job_history_idempotency_key RENAME TO job_history_unpartitioned_idempotency_key;

CREATE TABLE job_history (LIKE job_history_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (id);
ALTER TABLE job_history ADD PRIMARY KEY (id);
-- Operators look for what went wrong (dead, retrying, cancelled), by state and queue, newest
-- first. Every other row stays out of this index: a job is recorded as queued by the API and
-- then, nearly always, succeeds, and an index entry for either would cost a fifth to two
-- fifths of the history's write cost (measured). Other filters read the primary key newest
-- first, which the id's time order makes a short walk for recent jobs.
CREATE INDEX job_history_attention ON job_history (state, queue, id DESC)
    WHERE state IN ('retrying', 'dead', 'cancelled');
CREATE INDEX job_history_idempotency_key ON job_history (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE job_history_default PARTITION OF job_history DEFAULT;

-- A partition for each day the existing rows cover (at most the last 400: older rows go to
-- the default partition, where retention deletes them), through a week ahead.
SELECT job_history_ensure_partitions(
    GREATEST(LEAST((now() AT TIME ZONE 'UTC')::date,
                   (SELECT min(created_at AT TIME ZONE 'UTC')::date FROM job_history_unpartitioned)),
             (now() AT TIME ZONE 'UTC')::date - 400),
    (now() AT TIME ZONE 'UTC')::date + 7);
INSERT INTO job_history SELECT * FROM job_history_unpartitioned;
DROP TABLE job_history_unpartitioned;
