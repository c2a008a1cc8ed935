-- What a user is told: their generation finished, someone remixed, liked, commented, followed.
CREATE TABLE notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id     bigint REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    clip_id      bigint REFERENCES clips (id) ON DELETE CASCADE,
    job_id       bigint REFERENCES generation_jobs (id) ON DELETE CASCADE,
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz
);
CREATE INDEX notifications_recipient_idx ON notifications (recipient_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (recipient_id) WHERE read_at IS NULL;
