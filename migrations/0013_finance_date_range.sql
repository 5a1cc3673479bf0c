-- The dates finance data may hold: the range the API accepts (nightshift_catalog::cashflow::
-- FIRST_DATE..LAST_DATE). PostgreSQL's own range reaches the year 5874897, past what the
-- projection engine's calendar (and sqlx's decoding into it) can hold, so a row written
-- straight into these tables with such a date would fail every projection of its user.
-- NOT VALID: enforced for every new and updated row; rows already here are not re-checked,
-- so an upgrade never fails on old data.
-- One constraint per column: a nested AND is printed back flattened, and the restore drill
-- compares the schema as pg_dump prints it.
ALTER TABLE recurring_items ADD CONSTRAINT recurring_items_anchor_date_in_range
    CHECK (anchor_date BETWEEN '1970-01-01' AND '2199-12-31') NOT VALID;
ALTER TABLE recurring_items ADD CONSTRAINT recurring_items_end_date_in_range
    CHECK (end_date IS NULL OR end_date BETWEEN '1970-01-01' AND '2199-12-31') NOT VALID;
ALTER TABLE scheduled_transactions ADD CONSTRAINT scheduled_transactions_date_in_range
    CHECK (date BETWEEN '1970-01-01' AND '2199-12-31') NOT VALID;
