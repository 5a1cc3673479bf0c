-- The finance data the first cashflow projection reads. Money is integer minor units.
CREATE TABLE users (
    id                      bigint PRIMARY KEY,
    email                   text   NOT NULL,
    time_zone               text   NOT NULL DEFAULT 'UTC',
    currency                char(3) NOT NULL DEFAULT 'EUR',
    low_balance_threshold   bigint NOT NULL DEFAULT 0 CHECK (low_balance_threshold BETWEEN -1000000000 AND 1000000000)
);

CREATE TABLE accounts (
    id        bigserial PRIMARY KEY,
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name      text   NOT NULL,
    balance   bigint NOT NULL CHECK (balance BETWEEN -1000000000000 AND 1000000000000)
);
CREATE INDEX accounts_user ON accounts (user_id);

-- Recurring income (amount > 0) and bills (amount < 0).
CREATE TABLE recurring_items (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text   NOT NULL,
    amount      bigint NOT NULL CHECK (amount <> 0 AND amount BETWEEN -1000000000 AND 1000000000),
    cadence     text   NOT NULL CHECK (cadence IN ('weekly', 'biweekly', 'monthly', 'yearly')),
    anchor_date date   NOT NULL,
    end_date    date
);
CREATE INDEX recurring_items_user ON recurring_items (user_id);

-- One stored projection per (user, as-of date): the fence that makes re-runs idempotent.
CREATE TABLE cashflow_projections (
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    as_of          date   NOT NULL,
    horizon_days   integer NOT NULL,
    opening        bigint NOT NULL,
    lowest_balance bigint NOT NULL,
    lowest_date    date   NOT NULL,
    first_shortfall date,
    days           jsonb  NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, as_of)
);
