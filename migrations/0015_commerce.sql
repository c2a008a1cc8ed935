-- Commerce: product tags on clips, tracked taps, attributed orders, the double-entry ledger and
-- pay-per-result campaigns. Money is integer minor units with an ISO 4217 currency everywhere.

-- A product shown in a clip. Only the clip's author tags, and only products of their own shops
-- or of shops that allow affiliates (checked by the service). Removing a tag keeps the row
-- (taps and orders point at it) and hides it.
CREATE TABLE product_tags (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clip_id     bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    created_by  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    start_ms    integer CHECK (start_ms >= 0),
    end_ms      integer CHECK (end_ms >= 0),
    -- Where on the frame, as fractions of width and height.
    x           real CHECK (x BETWEEN 0 AND 1),
    y           real CHECK (y BETWEEN 0 AND 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz,
    CHECK (start_ms IS NULL OR end_ms IS NULL OR start_ms < end_ms)
);
CREATE UNIQUE INDEX product_tags_live_idx ON product_tags (clip_id, product_id) WHERE removed_at IS NULL;
CREATE INDEX product_tags_product_idx ON product_tags (product_id);

-- A viewer's tap on a tag: counted once per viewer, tag and UTC day (the unique key); the
-- attribution token handed out names this row.
CREATE TABLE taps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag_id      bigint NOT NULL REFERENCES product_tags (id) ON DELETE CASCADE,
    clip_id     bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    shop_id     bigint NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    viewer_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day         date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tag_id, viewer_id, day)
);
CREATE INDEX taps_shop_time_idx ON taps (shop_id, created_at);
CREATE INDEX taps_viewer_product_idx ON taps (viewer_id, product_id, created_at DESC);

-- Signed webhook deliveries already taken (Standard Webhooks `webhook-id`): a replay is refused.
CREATE TABLE webhook_deliveries (
    shop_id     bigint NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    webhook_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, webhook_id)
);

-- An order a shop reported, attributed to the last tap within the window (or to nothing).
CREATE TABLE orders (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id           bigint NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    external_order_id text NOT NULL CHECK (char_length(external_order_id) BETWEEN 1 AND 200),
    product_id        bigint REFERENCES products (id) ON DELETE SET NULL,
    tap_id            bigint REFERENCES taps (id) ON DELETE SET NULL,
    clip_id           bigint REFERENCES clips (id) ON DELETE SET NULL,
    buyer_id          bigint REFERENCES users (id) ON DELETE SET NULL,
    quantity          integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    refunded_minor    bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    status            text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'refunded', 'partially_refunded')),
    placed_at         timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, external_order_id),
    CHECK (refunded_minor <= amount_minor)
);
CREATE INDEX orders_shop_time_idx ON orders (shop_id, placed_at);
CREATE INDEX orders_clip_idx ON orders (clip_id) WHERE clip_id IS NOT NULL;

-- Refunds, one row per refund the shop reported (idempotent by its id).
CREATE TABLE refunds (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id           bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    external_refund_id text NOT NULL CHECK (char_length(external_refund_id) BETWEEN 1 AND 200),
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, external_refund_id)
);

-- Double-entry ledger. An account belongs to the platform, a user (creator, cameo owner,
-- advertiser) or a shop, in one currency. A transaction's entries sum to zero per currency
-- (checked at commit by a constraint trigger); entries are never updated or deleted: a refund
-- is a new transaction that reverses.
CREATE TABLE ledger_accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN (
                   'platform_fees', 'platform_clearing', 'creator_earnings', 'cameo_earnings',
                   'shop_payable', 'advertiser_budget', 'advertiser_funding')),
    owner_id   bigint,
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ledger_accounts_key_idx ON ledger_accounts (kind, coalesce(owner_id, 0), currency);

CREATE TABLE ledger_transactions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    -- What caused it ('order:17', 'refund:4', 'usage:9', 'campaign:3:views:12'): unique, so the
    -- same cause is booked once however often it arrives.
    reference   text NOT NULL UNIQUE,
    memo        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    account_id     bigint NOT NULL REFERENCES ledger_accounts (id),
    amount_minor   bigint NOT NULL CHECK (amount_minor <> 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id, id DESC);
CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);

CREATE FUNCTION ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT currency INTO unbalanced FROM ledger_entries
    WHERE transaction_id = NEW.transaction_id
    GROUP BY currency HAVING sum(amount_minor) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not sum to zero in %', NEW.transaction_id, unbalanced
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_balanced();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Pay-per-result campaigns: an advertiser funds a budget for a clip or a product and is billed
-- per thousand views or per attributed order; spent never passes budget (CHECK + row lock).
CREATE TABLE campaigns (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advertiser_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id       bigint REFERENCES clips (id) ON DELETE CASCADE,
    product_id    bigint REFERENCES products (id) ON DELETE CASCADE,
    billing       text NOT NULL CHECK (billing IN ('cpm', 'cpa')),
    rate_minor    bigint NOT NULL CHECK (rate_minor > 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    budget_minor  bigint NOT NULL CHECK (budget_minor > 0),
    spent_minor   bigint NOT NULL DEFAULT 0 CHECK (spent_minor >= 0),
    -- Views already billed (cpm bills whole thousands; the remainder waits for the next).
    billed_views  bigint NOT NULL DEFAULT 0 CHECK (billed_views >= 0),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'exhausted', 'ended')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (spent_minor <= budget_minor),
    CHECK ((clip_id IS NULL) <> (product_id IS NULL))
);
CREATE INDEX campaigns_advertiser_idx ON campaigns (advertiser_id, id DESC);
CREATE INDEX campaigns_clip_idx ON campaigns (clip_id) WHERE status = 'active';
CREATE INDEX campaigns_product_idx ON campaigns (product_id) WHERE status = 'active';
