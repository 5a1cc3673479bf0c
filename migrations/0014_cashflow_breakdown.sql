-- An account's balance as read on a date: a projection from another day rolls it forward (or
-- back) by the user's items in between. NULL: the balance stands for whatever day is projected.
ALTER TABLE accounts ADD COLUMN balance_date date
    CONSTRAINT accounts_balance_date_in_range CHECK (balance_date BETWEEN '1970-01-01' AND '2199-12-31');

-- What a projection assumed, and the items that make up each day. The breakdown is five
-- parallel arrays (one element per occurrence) rather than rows or JSON: a 100,000-user
-- nightly run writes it in the same row, in binary, at the cost of a few hundred bytes.
ALTER TABLE cashflow_projections
    ADD COLUMN include_as_of  boolean   NOT NULL DEFAULT false,
    ADD COLUMN balance_date   date,
    -- Day index (0 is as_of), the item's id, whether it is a one-off (scheduled_transactions)
    -- or recurring, its name when projected, and the amount booked.
    ADD COLUMN entry_day      integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN entry_item     bigint[]  NOT NULL DEFAULT '{}',
    ADD COLUMN entry_one_off  boolean[] NOT NULL DEFAULT '{}',
    ADD COLUMN entry_name     text[]    NOT NULL DEFAULT '{}',
    ADD COLUMN entry_amount   bigint[]  NOT NULL DEFAULT '{}';
