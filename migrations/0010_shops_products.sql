-- Shops and their products: what a clip can tag, what the product studio turns into clips.
-- Tags, taps, orders and the ledger build on these (later migrations).

CREATE TABLE shops (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform         text NOT NULL CHECK (platform IN ('tiktok_shop', 'shopify', 'amazon', 'own_site')),
    external_id      text NOT NULL CHECK (char_length(external_id) BETWEEN 1 AND 200),
    url              text NOT NULL CHECK (char_length(url) <= 2000),
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 120),
    -- Standard Webhooks secret ("whsec_" + base64), shown to the owner once and on request.
    webhook_secret   text NOT NULL,
    allow_affiliates boolean NOT NULL DEFAULT false,
    -- Creator commission when the product sets none, and the platform's fee, in basis points.
    commission_bps   integer NOT NULL DEFAULT 1000 CHECK (commission_bps BETWEEN 0 AND 10000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, external_id)
);
CREATE INDEX shops_owner_idx ON shops (owner_id, id DESC);

CREATE TABLE products (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id        bigint NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    title          text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 300),
    description    text NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
    url            text NOT NULL CHECK (char_length(url) <= 2000),
    image_urls     text[] NOT NULL DEFAULT '{}',
    brand          text,
    price_minor    bigint CHECK (price_minor >= 0),
    currency       text CHECK (currency ~ '^[A-Z]{3}$'),
    availability   text NOT NULL DEFAULT 'unknown'
                   CHECK (availability IN ('in_stock', 'out_of_stock', 'preorder', 'unknown')),
    commission_bps integer CHECK (commission_bps BETWEEN 0 AND 10000),
    source         text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'import')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    CHECK ((price_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX products_shop_idx ON products (shop_id, id DESC) WHERE deleted_at IS NULL;
