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
    declared_rights     text CHECK (char_length(declared_rights) <= 1000),
    -- The verification video: the reference a provider gets for one authorised generation.
    reference_media_id  bigint REFERENCES media (id),
    review_note         text,
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
           AND (licence_price_minor IS NULL) = (licence_currency IS NULL)),
    CHECK (kind <> 'character' OR declared_rights IS NOT NULL)
);
CREATE INDEX cameos_owner_idx ON cameos (owner_id, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX cameos_review_idx ON cameos (updated_at) WHERE status = 'pending_review' AND deleted_at IS NULL;

-- A liveness challenge: words to say on camera, fresh for ten minutes, usable once.
CREATE TABLE cameo_challenges (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cameo_id    bigint NOT NULL REFERENCES cameos (id) ON DELETE CASCADE,
    phrase      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cameo_challenges_cameo_idx ON cameo_challenges (cameo_id, id DESC);

-- Who asked to use a cameo and what its owner said; a revoked or denied row can be asked again.
CREATE TABLE cameo_grants (
    cameo_id    bigint NOT NULL REFERENCES cameos (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('requested', 'approved', 'denied', 'revoked')),
    note        text NOT NULL DEFAULT '' CHECK (char_length(note) <= 300),
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    PRIMARY KEY (cameo_id, user_id)
);
CREATE INDEX cameo_grants_user_idx ON cameo_grants (user_id) WHERE status = 'approved';

-- Appearances the owner removed: the clip stays hidden whatever consent says later.
CREATE TABLE cameo_removals (
    cameo_id    bigint NOT NULL REFERENCES cameos (id) ON DELETE CASCADE,
    clip_id     bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    removed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cameo_id, clip_id)
);

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
CREATE INDEX cameo_usage_cameo_idx ON cameo_usage_entries (cameo_id, id DESC);

-- The one definition of consent, used by generation (may this user put the cameo in a clip?),
-- by publishing and by every read of a clip (is this clip still allowed to show the cameo?).
-- Its owner may always use a cameo that is not deleted; anyone else only a verified one, with
-- no block between them, and as its consent says.
CREATE FUNCTION cameo_allows(cameo_id bigint, who bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((
        SELECT c.deleted_at IS NULL AND (
            c.owner_id = who
            OR (c.status = 'verified'
                AND NOT EXISTS (SELECT 1 FROM blocks b
                                WHERE (b.blocker_id = c.owner_id AND b.blocked_id = who)
                                   OR (b.blocker_id = who AND b.blocked_id = c.owner_id))
                AND CASE c.consent
                    WHEN 'everyone' THEN true
                    WHEN 'approved' THEN EXISTS (SELECT 1 FROM cameo_grants g
                                                 WHERE g.cameo_id = c.id AND g.user_id = who
                                                   AND g.status = 'approved')
                    WHEN 'mutuals' THEN EXISTS (SELECT 1 FROM follows f
                                                WHERE f.follower_id = who AND f.followee_id = c.owner_id)
                                    AND EXISTS (SELECT 1 FROM follows f
                                                WHERE f.follower_id = c.owner_id AND f.followee_id = who)
                    ELSE false
                END))
        FROM cameos c WHERE c.id = cameo_id), false)
$$;

-- A clip may be shown while every cameo in it still consents to its author and no owner
-- removed it. Clips without cameos (nearly all) never call this.
CREATE FUNCTION clip_cameos_ok(clip_id bigint, author_id bigint, cameo_ids bigint[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM unnest(cameo_ids) AS u(id) WHERE NOT cameo_allows(u.id, author_id))
       AND NOT EXISTS (SELECT 1 FROM cameo_removals r WHERE r.clip_id = clip_cameos_ok.clip_id)
$$;
