-- The finance data cashflow projections read, and what they write. Money is integer minor
-- units; dates in projections are the user's local dates.
CREATE TABLE users (
    id                      bigint  PRIMARY KEY,
    email                   text    NOT NULL,
    time_zone               text    NOT NULL DEFAULT 'UTC' CHECK (time_zone <> ''),
    currency                char(3) NOT NULL DEFAULT 'EUR',
    low_balance_threshold   bigint  NOT NULL DEFAULT 0 CHECK (low_balance_threshold BETWEEN -1000000000 AND 1000000000)
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
    id              bigserial PRIMARY KEY,
    user_id         bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text    NOT NULL,
    amount          bigint  NOT NULL CHECK (amount <> 0 AND amount BETWEEN -1000000000 AND 1000000000),
    cadence         text    NOT NULL CHECK (cadence IN ('weekly', 'biweekly', 'every_n_weeks', 'semi_monthly', 'monthly', 'monthly_last_day', 'yearly')),
    anchor_date     date    NOT NULL,
    end_date        date    CHECK (end_date IS NULL OR end_date >= anchor_date),
    -- every_n_weeks: the period in weeks (biweekly is 2).
    interval_weeks  integer CHECK (interval_weeks BETWEEN 1 AND 52),
    -- semi_monthly: the two days of the month, clamped to short months.
    days_of_month   integer[] CHECK (days_of_month IS NULL OR (cardinality(days_of_month) = 2
        AND days_of_month[1] BETWEEN 1 AND 31 AND days_of_month[2] BETWEEN 1 AND 31 AND days_of_month[1] < days_of_month[2])),
    -- A date on a weekend moves: 'previous' (a payday to Friday) or 'next' (a bill to Monday).
    business_day    text    NOT NULL DEFAULT 'none' CHECK (business_day IN ('none', 'previous', 'next')),
    -- Stop after this many occurrences, counted from the anchor.
    occurrences     integer CHECK (occurrences >= 1),
    CHECK (cadence <> 'every_n_weeks' OR interval_weeks IS NOT NULL),
    CHECK (cadence <> 'semi_monthly' OR days_of_month IS NOT NULL)
);
CREATE INDEX recurring_items_user ON recurring_items (user_id);

CREATE TABLE scheduled_transactions (
    id       bigserial PRIMARY KEY,
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name     text   NOT NULL,
    amount   bigint NOT NULL CHECK (amount <> 0 AND amount BETWEEN -1000000000 AND 1000000000),
    date     date   NOT NULL
);
CREATE INDEX scheduled_transactions_user_date ON scheduled_transactions (user_id, date);

-- One projection per (user, as-of date): the fence that makes re-runs idempotent. Day i is
-- as_of + i; the arrays are compact and written in binary.
CREATE TABLE cashflow_projections (
    user_id          bigint   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    as_of            date     NOT NULL,
    opening          bigint   NOT NULL,
    inflows          bigint[] NOT NULL,
    outflows         bigint[] NOT NULL,
    closing          bigint[] NOT NULL,
    lowest_balance   bigint   NOT NULL,
    lowest_date      date     NOT NULL,
    first_shortfall  date,
    threshold        bigint   NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, as_of),
    CHECK (cardinality(inflows) = cardinality(closing) AND cardinality(outflows) = cardinality(closing))
);

-- One alert per (user, shortfall date): a re-run, or tomorrow's projection finding the same
-- shortfall, does not warn twice.
CREATE TABLE shortfall_alerts (
    user_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shortfall_date     date   NOT NULL,
    detected_as_of     date   NOT NULL,
    projected_balance  bigint NOT NULL,
    threshold          bigint NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, shortfall_date)
);
