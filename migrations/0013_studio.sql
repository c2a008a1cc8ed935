-- The product studio: script runs that turn a product into generations, breakdowns of clips that
-- performed well, and the judge's scores of every take.

-- What a clip's structure looked like when someone studied it (a snapshot: the clip's numbers
-- keep moving, the breakdown records what was seen).
CREATE TABLE breakdowns (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id     bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    structure   jsonb NOT NULL,
    metrics     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX breakdowns_user_idx ON breakdowns (user_id, id DESC);

-- One studio request: the scripts written for a product and the generation made from each.
CREATE TABLE studio_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id     bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    breakdown_id   bigint REFERENCES breakdowns (id) ON DELETE SET NULL,
    goal           text NOT NULL CHECK (goal IN ('awareness', 'conversion')),
    style          text NOT NULL,
    language       text NOT NULL,
    variants       integer NOT NULL CHECK (variants BETWEEN 1 AND 4),
    seconds        integer NOT NULL CHECK (seconds > 0),
    writer         text NOT NULL,
    scripts        jsonb NOT NULL,
    generation_ids bigint[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(generation_ids) = variants)
);
CREATE INDEX studio_runs_user_idx ON studio_runs (user_id, id DESC);

-- The judge's scores of one take, each in [0, 1]; rescoring replaces the row.
CREATE TABLE take_scores (
    take_id             bigint PRIMARY KEY REFERENCES takes (id) ON DELETE CASCADE,
    realism             double precision NOT NULL CHECK (realism BETWEEN 0 AND 1),
    product_consistency double precision NOT NULL CHECK (product_consistency BETWEEN 0 AND 1),
    voice_over          double precision NOT NULL CHECK (voice_over BETWEEN 0 AND 1),
    script_structure    double precision NOT NULL CHECK (script_structure BETWEEN 0 AND 1),
    overall             double precision NOT NULL CHECK (overall BETWEEN 0 AND 1),
    judge               text NOT NULL,
    notes               jsonb NOT NULL DEFAULT '{}',
    scored_at           timestamptz NOT NULL DEFAULT now()
);
