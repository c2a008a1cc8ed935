-- Media files, generation jobs and their takes, and clips (drafts and published).

CREATE TABLE media (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('video', 'poster', 'image', 'upload')),
    storage_key  text NOT NULL UNIQUE,
    content_type text NOT NULL,
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    sha256       bytea NOT NULL CHECK (octet_length(sha256) = 32),
    width        integer,
    height       integer,
    duration_ms  integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX media_owner_idx ON media (owner_id, id DESC);
CREATE INDEX media_deleted_idx ON media (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE generation_jobs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prompt             text NOT NULL CHECK (char_length(prompt) BETWEEN 1 AND 2000),
    provider_prompt    text NOT NULL,
    model              text NOT NULL,
    seconds            integer NOT NULL CHECK (seconds BETWEEN 1 AND 60),
    width              integer NOT NULL CHECK (width > 0),
    height             integer NOT NULL CHECK (height > 0),
    takes_requested    integer NOT NULL CHECK (takes_requested BETWEEN 1 AND 4),
    cameo_ids          bigint[] NOT NULL DEFAULT '{}',
    remix_of           bigint,
    product_id         bigint,
    reference_media_id bigint REFERENCES media (id),
    status             text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'in_progress', 'succeeded', 'partial', 'failed', 'canceled')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
CREATE INDEX generation_jobs_user_idx ON generation_jobs (user_id, id DESC);

CREATE TABLE takes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id            bigint NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    user_id           bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position          integer NOT NULL CHECK (position BETWEEN 0 AND 3),
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'submitted', 'in_progress', 'succeeded', 'failed', 'canceled')),
    model             text NOT NULL,
    provider          text,
    provider_job_id   text,
    progress          integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempts          integer NOT NULL DEFAULT 0,
    error_code        text,
    error_message     text,
    reserved_seconds  integer NOT NULL,
    cost_minor        bigint NOT NULL DEFAULT 0 CHECK (cost_minor >= 0),
    currency          text NOT NULL DEFAULT 'USD',
    video_media_id    bigint REFERENCES media (id),
    poster_media_id   bigint REFERENCES media (id),
    duration_ms       integer,
    width             integer,
    height            integer,
    seed              bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    progressed_at     timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    UNIQUE (job_id, position)
);
CREATE INDEX takes_open_idx ON takes (progressed_at) WHERE status IN ('queued', 'submitted', 'in_progress');
CREATE UNIQUE INDEX takes_provider_job_key ON takes (provider, provider_job_id) WHERE provider_job_id IS NOT NULL;

-- Daily generation seconds: reserved at submit, released for failed or canceled takes.
CREATE TABLE generation_quota (
    user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day              date NOT NULL,
    reserved_seconds integer NOT NULL DEFAULT 0 CHECK (reserved_seconds >= 0),
    PRIMARY KEY (user_id, day)
);

-- A clip is born a draft (one per succeeded take) and becomes public when published.
CREATE TABLE clips (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    take_id         bigint NOT NULL UNIQUE REFERENCES takes (id) ON DELETE CASCADE,
    job_id          bigint NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'published', 'removed', 'deleted')),
    caption         text NOT NULL DEFAULT '' CHECK (char_length(caption) <= 2200),
    hashtags        text[] NOT NULL DEFAULT '{}',
    mentions        text[] NOT NULL DEFAULT '{}',
    visibility      text NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'followers', 'private')),
    allow_remix     boolean NOT NULL DEFAULT true,
    allow_comments  boolean NOT NULL DEFAULT true,
    prompt          text NOT NULL,
    model           text NOT NULL,
    provider        text NOT NULL,
    cost_minor      bigint NOT NULL DEFAULT 0,
    currency        text NOT NULL DEFAULT 'USD',
    video_media_id  bigint NOT NULL REFERENCES media (id),
    poster_media_id bigint NOT NULL REFERENCES media (id),
    duration_ms     integer NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    cameo_ids       bigint[] NOT NULL DEFAULT '{}',
    product_id      bigint,
    parent_id       bigint REFERENCES clips (id) ON DELETE SET NULL,
    root_id         bigint REFERENCES clips (id) ON DELETE SET NULL,
    depth           integer NOT NULL DEFAULT 0 CHECK (depth >= 0),
    provenance      jsonb NOT NULL,
    view_count      bigint NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    like_count      bigint NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count   bigint NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    share_count     bigint NOT NULL DEFAULT 0 CHECK (share_count >= 0),
    remix_count     bigint NOT NULL DEFAULT 0 CHECK (remix_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    removed_at      timestamptz,
    removed_reason  text
);
CREATE INDEX clips_author_drafts_idx ON clips (author_id, id DESC) WHERE status = 'draft';
CREATE INDEX clips_author_published_idx ON clips (author_id, published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX clips_published_idx ON clips (published_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX clips_parent_idx ON clips (parent_id, published_at DESC, id DESC) WHERE parent_id IS NOT NULL;
CREATE INDEX clips_root_idx ON clips (root_id) WHERE root_id IS NOT NULL;
CREATE INDEX clips_cameo_idx ON clips USING gin (cameo_ids);
CREATE INDEX clips_hashtags_idx ON clips USING gin (hashtags);

ALTER TABLE generation_jobs
    ADD CONSTRAINT generation_jobs_remix_of_fkey FOREIGN KEY (remix_of) REFERENCES clips (id) ON DELETE SET NULL;
