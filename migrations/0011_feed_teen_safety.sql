-- Teen safety in the feed: whether a clip's words pass the stricter teen screening, decided
-- when its content vector is computed (publish, caption edits). Teen viewers, and viewers
-- whose age is unknown while signed out, are shown only teen-safe clips.
ALTER TABLE clip_vectors ADD COLUMN teen_safe boolean NOT NULL DEFAULT false;
