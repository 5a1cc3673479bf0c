-- Reminders, and the two outboxes their notifications go through: e-mail and webhooks. Each
-- effect has one row under a unique key, claimed before it is sent and marked after, so a
-- replayed scan, a retried job or two workers at once send it once.

-- How e-mails greet the user; the e-mail's local part when unset.
ALTER TABLE users ADD COLUMN name text CHECK (length(name) <= 200);

-- A user's webhook receiver. The secret signs every delivery; after a rotation the previous
-- one still signs (a second signature) until `previous_expires_at`, so receivers can switch
-- without dropping deliveries.
CREATE TABLE webhook_endpoints (
    id                   bigserial   PRIMARY KEY,
    user_id              bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url                  text        NOT NULL CHECK (url ~ '^https?://'),
    secret               text        NOT NULL,
    previous_secret      text,
    previous_expires_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    rotated_at           timestamptz
);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id);

-- A bill or reminder: one due date, or a cadence from `due_date` as in recurring_items.
-- The user is told `lead_days` before each due date at `notify_time`, the user's local time.
CREATE TABLE reminders (
    id              bigserial   PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    amount          bigint      CHECK (amount BETWEEN -1000000000 AND 1000000000),
    due_date        date        NOT NULL,
    cadence         text        CHECK (cadence IN ('weekly', 'biweekly', 'every_n_weeks', 'semi_monthly', 'monthly', 'monthly_last_day', 'yearly')),
    interval_weeks  integer     CHECK (interval_weeks BETWEEN 1 AND 52),
    days_of_month   integer[]   CHECK (days_of_month IS NULL OR (cardinality(days_of_month) = 2
        AND days_of_month[1] BETWEEN 1 AND 31 AND days_of_month[2] BETWEEN 1 AND 31 AND days_of_month[1] < days_of_month[2])),
    end_date        date        CHECK (end_date IS NULL OR end_date >= due_date),
    lead_days       integer     NOT NULL DEFAULT 0 CHECK (lead_days BETWEEN 0 AND 60),
    notify_time     time        NOT NULL DEFAULT '09:00',
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    webhook_id      bigint      REFERENCES webhook_endpoints (id) ON DELETE RESTRICT,
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'webhook') = (webhook_id IS NOT NULL)),
    CHECK (cadence IS DISTINCT FROM 'every_n_weeks' OR interval_weeks IS NOT NULL),
    CHECK (cadence IS DISTINCT FROM 'semi_monthly' OR days_of_month IS NOT NULL)
);
CREATE INDEX reminders_user ON reminders (user_id);
CREATE INDEX reminders_active ON reminders (id) WHERE active;

-- The fence of reminder notifications: one row per (reminder, due date), whoever scans.
-- `queued` until the notify job has put the message in its outbox, then `handed_off`.
CREATE TABLE reminder_deliveries (
    reminder_id    bigint      NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    due_date       date        NOT NULL,
    notify_at      timestamptz NOT NULL,
    state          text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'handed_off')),
    outbox_key     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    handed_off_at  timestamptz,
    PRIMARY KEY (reminder_id, due_date)
);
CREATE INDEX reminder_deliveries_queued ON reminder_deliveries (notify_at) WHERE state = 'queued';

-- One e-mail per message key, rendered when it is queued so every attempt sends the same
-- bytes under the same Message-ID. `claimed_by` is the job sending it now.
CREATE TABLE email_outbox (
    message_key    text        PRIMARY KEY,
    message_id     text        NOT NULL UNIQUE,
    template       text        NOT NULL,
    recipient      text        NOT NULL,
    subject        text        NOT NULL,
    text_body      text        NOT NULL,
    html_body      text        NOT NULL,
    state          text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts       integer     NOT NULL DEFAULT 0,
    claimed_by     text,
    claimed_until  timestamptz,
    last_error     text,
    smtp_reply     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);

-- One webhook delivery per key; the body is stored as text so every attempt signs and sends
-- the same bytes. Receivers dedupe on the key (sent as Nightshift-Webhook-Id).
CREATE TABLE webhook_outbox (
    delivery_key   text        PRIMARY KEY,
    endpoint_id    bigint      NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event          text        NOT NULL,
    body           text        NOT NULL,
    state          text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts       integer     NOT NULL DEFAULT 0,
    last_status    integer,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at   timestamptz
);
