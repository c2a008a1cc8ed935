-- Moderation: reports folded into cases, a review queue, decisions and their effects, appeals,
-- and an append-only audit log.

-- A suspension ends by itself: the account counts as active again once suspended_until passes.
ALTER TABLE users ADD COLUMN suspended_until timestamptz;
ALTER TABLE users ADD COLUMN strikes integer NOT NULL DEFAULT 0 CHECK (strikes >= 0);
-- Age-restricted clips are shown only to signed-in adults.
ALTER TABLE clips ADD COLUMN age_restricted boolean NOT NULL DEFAULT false;

-- Whether an account's content may be shown: active, or suspended with the suspension over.
CREATE FUNCTION account_active(status text, suspended_until timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT status = 'active' OR (status = 'suspended' AND suspended_until IS NOT NULL AND suspended_until <= now())
$$;

-- One case per target while it is open: every report of the target joins it.
CREATE TABLE moderation_cases (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL DEFAULT 'report' CHECK (kind IN ('report', 'appeal')),
    target        text NOT NULL CHECK (target IN ('clip', 'comment', 'user', 'cameo')),
    target_id     bigint NOT NULL,
    subject_id    bigint REFERENCES users (id) ON DELETE CASCADE,  -- whose content or account it is
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'decided')),
    report_count  integer NOT NULL DEFAULT 0 CHECK (report_count >= 0),
    auto_flags    integer NOT NULL DEFAULT 0 CHECK (auto_flags >= 0),
    reasons       text[] NOT NULL DEFAULT '{}',
    claimed_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    claimed_until timestamptz,
    decided_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    action        text CHECK (action IN ('remove', 'restore', 'age_restrict', 'strike', 'suspend', 'ban',
                                         'dismiss', 'uphold', 'overturn')),
    action_reason text,
    decided_at    timestamptz,
    appeal_of     bigint REFERENCES moderation_cases (id) ON DELETE CASCADE,
    statement     text CHECK (char_length(statement) <= 2000),  -- the appellant's words
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'appeal') = (appeal_of IS NOT NULL))
);
CREATE UNIQUE INDEX moderation_cases_open_idx ON moderation_cases (target, target_id)
    WHERE status = 'open' AND kind = 'report';
CREATE UNIQUE INDEX moderation_cases_one_appeal_idx ON moderation_cases (appeal_of) WHERE kind = 'appeal';
CREATE INDEX moderation_cases_queue_idx ON moderation_cases (status, id) WHERE status = 'open';
CREATE INDEX moderation_cases_subject_idx ON moderation_cases (subject_id, id DESC);

CREATE TABLE reports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES moderation_cases (id) ON DELETE CASCADE,
    reporter_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target      text NOT NULL,
    target_id   bigint NOT NULL,
    reason      text NOT NULL CHECK (reason IN (
                    'sexual', 'minors', 'violence', 'hate', 'harassment', 'self_harm', 'spam',
                    'impersonation', 'likeness_without_consent', 'ip', 'undisclosed_ad', 'other')),
    note        text NOT NULL DEFAULT '' CHECK (char_length(note) <= 1000),
    start_ms    integer CHECK (start_ms >= 0),
    end_ms      integer CHECK (end_ms >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, reporter_id)
);
CREATE INDEX reports_reporter_idx ON reports (reporter_id, id DESC);

-- Everything a moderator (or the system) did. Append-only, so no foreign keys: a deleted
-- account or case must not rewrite the record of what was done to it.
CREATE TABLE moderation_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id   bigint,  -- NULL: the system
    action     text NOT NULL,
    case_id    bigint,
    target     text,
    target_id  bigint,
    reason     text,
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_audit_target_idx ON moderation_audit (target, target_id, id DESC);

CREATE FUNCTION moderation_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the moderation audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER moderation_audit_append_only BEFORE UPDATE OR DELETE ON moderation_audit
    FOR EACH ROW EXECUTE FUNCTION moderation_audit_append_only();
