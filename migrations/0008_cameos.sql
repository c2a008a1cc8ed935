-- Cameos: a verified likeness whose owner decides who may use it, sees every appearance and
-- may license it. Generation asks cameo.authorize; clips carry cameo_ids (0002).

CREATE TABLE cameos (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('person', 'pet', 'object', 'character')),
    display_name        text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 80),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'pending_review', 'verified', 'rejected')),
    consent             text NOT NULL DEFAULT 'only_me'
                        CHECK (consent IN ('only_me', 'approved', 'mutuals', 'everyone')),
    rules               text NOT NULL DEFAULT '' CHECK (char_length(rules) <= 500),
    allow_remix         boolean NOT NULL DEFAULT true,
    declared_rights     text,
    reference_media_id  bigint REFERENCES media (id),
    -- Licence: a price per use or per second of clip, and a share of commerce earned by clips
    -- featuring the cameo (basis points). NULL price means not licensed for a fee.
    licence_price_minor bigint CHECK (licence_price_minor >= 0),
    licence_unit        text CHECK (licence_unit IN ('use', 'second')),
    licence_currency    text CHECK (licence_currency ~ '^[A-Z]{3}$'),
    revenue_share_bps   integer NOT NULL DEFAULT 0 CHECK (revenue_share_bps BETWEEN 0 AND 10000),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    verified_at         timestamptz,
    deleted_at          timestamptz,
    CHECK ((licence_price_minor IS NULL) = (licence_unit IS NULL)
           AND (licence_price_minor IS NULL) = (licence_currency IS NULL))
);
CREATE INDEX cameos_owner_idx ON cameos (owner_id, id DESC) WHERE deleted_at IS NULL;

-- Each kept (published) take that uses a licensed cameo writes one usage entry; the commerce
-- ledger books it once (its transaction references the entry id).
CREATE TABLE cameo_usage_entries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cameo_id     bigint NOT NULL REFERENCES cameos (id) ON DELETE CASCADE,
    owner_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id      bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cameo_id, clip_id)
);
CREATE INDEX cameo_usage_owner_idx ON cameo_usage_entries (owner_id, id DESC);

-- A clip another user made with a cameo whose consent is gone (revoked, or the owner removed
-- the appearance) is withheld: hidden from everyone but its author's drafts view and
-- moderators, and restored when consent returns (unless the owner removed the appearance).
ALTER TABLE clips ADD COLUMN consent_withheld boolean NOT NULL DEFAULT false;
