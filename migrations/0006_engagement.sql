-- Engagement on clips: likes, comments (replies one level deep), shares; and what each user
-- wants to be notified about.

CREATE TABLE likes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    clip_id    bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, clip_id)
);
CREATE INDEX likes_user_idx ON likes (user_id, created_at DESC, clip_id DESC);
CREATE INDEX likes_clip_idx ON likes (clip_id);

CREATE TABLE comments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clip_id     bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    author_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id   bigint REFERENCES comments (id) ON DELETE CASCADE,
    body        text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
    status      text NOT NULL DEFAULT 'visible' CHECK (status IN ('visible', 'hidden', 'deleted', 'removed')),
    reply_count integer NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_clip_idx ON comments (clip_id, id DESC) WHERE parent_id IS NULL;
CREATE INDEX comments_parent_idx ON comments (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX comments_author_idx ON comments (author_id, id DESC);

CREATE TABLE shares (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clip_id    bigint NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    channel    text NOT NULL DEFAULT 'link',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shares_clip_idx ON shares (clip_id);

-- Kinds a user turned off; absent means on.
CREATE TABLE notification_settings (
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind     text NOT NULL,
    enabled  boolean NOT NULL,
    PRIMARY KEY (user_id, kind)
);

ALTER TABLE notifications ADD COLUMN comment_id bigint REFERENCES comments (id) ON DELETE CASCADE;
