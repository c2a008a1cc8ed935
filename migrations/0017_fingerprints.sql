-- Near-duplicate detection: a 64-bit perceptual hash of each published clip's poster, and which
-- earlier clip it nearly copies, if any (moderation/duplicates.py).
CREATE TABLE clip_fingerprints (
    clip_id      bigint PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    author_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phash        bigint NOT NULL,
    duplicate_of bigint REFERENCES clips (id) ON DELETE SET NULL,
    distance     integer,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clip_fingerprints_recent_idx ON clip_fingerprints (created_at DESC);
CREATE INDEX clip_fingerprints_author_idx ON clip_fingerprints (author_id, created_at DESC);
