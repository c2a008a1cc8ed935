-- Later pages of a feed session are served as ranked unless something that could hide one of
-- their clips changed since (feed/visibility.py). These triggers say what changed, on channel
-- riffle_visibility, when the change commits: 'c<clip>' one clip, 'a<user>' every clip by that
-- author, 'u<user>' everything that viewer sees, 'k' every clip with a cameo. Only changes that
-- can hide a clip notify (publishing, unblocking or following again cannot).
CREATE FUNCTION notify_visibility(what text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('riffle_visibility', what)
$$;

-- A published clip deleted, removed, made private or followers-only, age-restricted.
CREATE FUNCTION clips_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('c' || (CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END).id);
    RETURN NULL;
END
$$;
CREATE TRIGGER clips_visibility_changed AFTER UPDATE OF status, visibility, age_restricted, cameo_ids, author_id
    ON clips FOR EACH ROW
    WHEN (OLD.status = 'published' AND (NEW.status <> 'published'
          OR OLD.visibility IS DISTINCT FROM NEW.visibility
          OR OLD.age_restricted IS DISTINCT FROM NEW.age_restricted
          OR OLD.cameo_ids IS DISTINCT FROM NEW.cameo_ids
          OR OLD.author_id IS DISTINCT FROM NEW.author_id))
    EXECUTE FUNCTION clips_visibility_changed();
CREATE TRIGGER clips_visibility_deleted AFTER DELETE ON clips
    FOR EACH ROW WHEN (OLD.status = 'published') EXECUTE FUNCTION clips_visibility_changed();

-- An account suspended or banned hides its clips; a viewer's birth year decides what is
-- age-restricted for them.
CREATE FUNCTION users_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('a' || NEW.id);
    PERFORM notify_visibility('u' || NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER users_visibility_changed AFTER UPDATE OF status, suspended_until, birth_year ON users
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.suspended_until IS DISTINCT FROM NEW.suspended_until
          OR OLD.birth_year IS DISTINCT FROM NEW.birth_year)
    EXECUTE FUNCTION users_visibility_changed();

-- Whether either of two accounts has a cameo whose consent a follow or block between them can
-- end (cameo_allows): only then are their clips for everyone to be checked again. Otherwise a
-- popular creator, blocked or unfollowed somewhere every moment, would send every feed session
-- holding their clips back to PostgreSQL.
CREATE FUNCTION has_cameo_between(a bigint, b bigint, consent_kinds text[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM cameos c WHERE c.owner_id IN (a, b) AND c.deleted_at IS NULL
                   AND c.consent = ANY (consent_kinds))
$$;

-- A block hides each side's clips from the other, and the clips either of them made with the
-- other's cameo from everyone.
CREATE FUNCTION blocks_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('u' || NEW.blocker_id);
    PERFORM notify_visibility('u' || NEW.blocked_id);
    IF has_cameo_between(NEW.blocker_id, NEW.blocked_id, ARRAY['approved', 'mutuals', 'everyone']) THEN
        PERFORM notify_visibility('a' || NEW.blocker_id);
        PERFORM notify_visibility('a' || NEW.blocked_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER blocks_visibility_changed AFTER INSERT ON blocks
    FOR EACH ROW EXECUTE FUNCTION blocks_visibility_changed();

-- An unfollow hides followers-only clips from the follower, and clips made with a cameo whose
-- consent is 'mutuals' (either of the two may be the author).
CREATE FUNCTION follows_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('u' || OLD.follower_id);
    IF has_cameo_between(OLD.follower_id, OLD.followee_id, ARRAY['mutuals']) THEN
        PERFORM notify_visibility('a' || OLD.follower_id);
        PERFORM notify_visibility('a' || OLD.followee_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER follows_visibility_changed AFTER DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION follows_visibility_changed();

-- A cameo's approval for one author revoked or denied: that author's clips with it.
CREATE FUNCTION cameo_grants_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('a' || OLD.user_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER cameo_grants_visibility_changed AFTER UPDATE OF status ON cameo_grants
    FOR EACH ROW WHEN (OLD.status = 'approved' AND NEW.status <> 'approved')
    EXECUTE FUNCTION cameo_grants_visibility_changed();
CREATE TRIGGER cameo_grants_visibility_deleted AFTER DELETE ON cameo_grants
    FOR EACH ROW WHEN (OLD.status = 'approved') EXECUTE FUNCTION cameo_grants_visibility_changed();

-- An owner took a clip with their cameo down.
CREATE FUNCTION cameo_removals_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('c' || NEW.clip_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER cameo_removals_visibility_changed AFTER INSERT ON cameo_removals
    FOR EACH ROW EXECUTE FUNCTION cameo_removals_visibility_changed();

-- A cameo's consent narrowed, its verification lost, or the cameo deleted: which clips use it
-- is not known here, so every clip with a cameo is checked again.
CREATE FUNCTION cameos_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_visibility('k');
    RETURN NULL;
END
$$;
CREATE TRIGGER cameos_visibility_changed AFTER UPDATE OF consent, status, deleted_at, owner_id ON cameos
    FOR EACH ROW
    WHEN (OLD.consent IS DISTINCT FROM NEW.consent OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION cameos_visibility_changed();
CREATE TRIGGER cameos_visibility_deleted AFTER DELETE ON cameos
    FOR EACH ROW EXECUTE FUNCTION cameos_visibility_changed();
