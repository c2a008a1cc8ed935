-- API processes remember the sessions they have authenticated (backend/accounts/session_cache.py).
-- These triggers tell every process to forget a user's sessions the moment a change to them
-- commits: NOTIFY is delivered at commit, never for a transaction that rolled back, and several
-- notifications with the same payload in one transaction arrive once.
CREATE FUNCTION notify_auth_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('riffle_auth', (CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END).user_id::text);
    RETURN NULL;
END
$$;

-- A session revoked or deleted (sign-out, revoke, suspension, pruning of live sessions). Touching
-- last_seen_at or expires_at on use does not notify: it happens on every cache miss.
CREATE TRIGGER sessions_auth_revoked AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION notify_auth_change();
CREATE TRIGGER sessions_auth_deleted AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL)
    EXECUTE FUNCTION notify_auth_change();

-- What a cached viewer carries, or whether the account may act at all.
CREATE FUNCTION notify_user_auth_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('riffle_auth', (CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END).id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER users_auth_changed AFTER UPDATE OF status, role, handle, birth_year ON users
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.role IS DISTINCT FROM NEW.role
                       OR OLD.handle IS DISTINCT FROM NEW.handle
                       OR OLD.birth_year IS DISTINCT FROM NEW.birth_year)
    EXECUTE FUNCTION notify_user_auth_change();
CREATE TRIGGER users_auth_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_auth_change();
