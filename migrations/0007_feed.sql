-- The feed: watch events (partitioned by month), per-clip statistics, clip and user vectors,
-- and what a viewer told the feed (steering text and topics, not-interested, hidden creators).

CREATE TABLE events (
    user_id         bigint NOT NULL,
    client_event_id text NOT NULL,
    type            text NOT NULL CHECK (type IN ('impression', 'watch', 'complete', 'skip', 'like', 'share',
                                                 'not_interested', 'hide_creator', 'tap')),
    clip_id         bigint NOT NULL,
    watch_ms        integer CHECK (watch_ms >= 0),
    at              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_event_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX events_clip_idx ON events (clip_id, at);
-- A catch-all so an event is never refused for want of a partition; the worker creates the
-- month partitions ahead of time and nothing should land here.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE TABLE clip_stats (
    clip_id        bigint PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    impressions    bigint NOT NULL DEFAULT 0,
    watches        bigint NOT NULL DEFAULT 0,
    completes      bigint NOT NULL DEFAULT 0,
    skips          bigint NOT NULL DEFAULT 0,
    likes          bigint NOT NULL DEFAULT 0,
    shares         bigint NOT NULL DEFAULT 0,
    negatives      bigint NOT NULL DEFAULT 0,
    watch_ms       bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Content vectors come from the Encoder; behaviour vectors from co-engagement; `embedding` is
-- their blend, the one the HNSW index serves (as halfvec: half the memory, recall measured).
CREATE TABLE clip_vectors (
    clip_id    bigint PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    content    vector(256) NOT NULL,
    behaviour  vector(256),
    embedding  vector(256) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clip_vectors_hnsw_idx ON clip_vectors USING hnsw ((embedding::halfvec(256)) halfvec_cosine_ops);

CREATE TABLE user_vectors (
    user_id     bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    interest    vector(256),
    steer_plus  vector(256),
    steer_minus vector(256),
    weight      double precision NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feed_preferences (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    text       text NOT NULL DEFAULT '' CHECK (char_length(text) <= 500),
    more       text[] NOT NULL DEFAULT '{}',
    fewer      text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE not_interested (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id    bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, clip_id)
);

CREATE TABLE hidden_creators (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    creator_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, creator_id),
    CHECK (user_id <> creator_id)
);

-- Month partitions around the day this runs; the worker keeps creating them ahead (daily).
DO $$
DECLARE
    first date := date_trunc('month', now())::date - interval '1 month';
    m int;
BEGIN
    FOR m IN 0..3 LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            'events_' || to_char(first + make_interval(months => m), 'YYYY_MM'),
            first + make_interval(months => m),
            first + make_interval(months => m + 1)
        );
    END LOOP;
END $$;
