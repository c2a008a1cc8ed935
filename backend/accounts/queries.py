"""SQL of the accounts domain: users, sessions, follows, blocks and mutes."""

ME_COLUMNS = """
    u.id, u.handle, u.email, u.display_name, u.bio, u.avatar_url, u.locale, u.birth_year,
    u.role, u.follower_count, u.following_count, u.created_at
"""

INSERT_USER = f"""
INSERT INTO users AS u (handle, email, password_hash, display_name, locale, birth_year)
VALUES (lower($1), lower($2), $3, $4, $5, $6)
RETURNING {ME_COLUMNS}
"""

ME = f"SELECT {ME_COLUMNS} FROM users u WHERE u.id = $1"

UPDATE_ME = f"""
UPDATE users AS u SET
    display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
    bio          = CASE WHEN $4 THEN $5 ELSE bio END,
    avatar_url   = CASE WHEN $6 THEN $7 ELSE avatar_url END,
    locale       = CASE WHEN $8 THEN $9 ELSE locale END,
    birth_year   = CASE WHEN $10 THEN $11 ELSE birth_year END,
    updated_at   = now()
WHERE u.id = $1
RETURNING {ME_COLUMNS}
"""

LOGIN_LOOKUP = """
SELECT id, password_hash, status, suspended_until, account_active(status, suspended_until) AS active
FROM users
WHERE lower(handle) = lower($1) OR lower(email) = lower($1)
LIMIT 1
"""

SET_PASSWORD_HASH = "UPDATE users SET password_hash = $2 WHERE id = $1"

INSERT_SESSION = """
INSERT INTO sessions (user_id, token_hash, user_agent, ip, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(days => $5))
RETURNING id, created_at, last_seen_at, expires_at, user_agent, ip
"""

# One round trip per request: find the live session and slide its expiry at most every 5 minutes.
AUTHENTICATE = """
WITH s AS (
    SELECT id, user_id, last_seen_at FROM sessions
    WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
), touched AS (
    UPDATE sessions SET last_seen_at = now(), expires_at = now() + make_interval(days => $2)
    WHERE id IN (SELECT id FROM s WHERE last_seen_at < now() - interval '5 minutes')
)
SELECT s.id AS session_id, u.id AS user_id, u.handle, u.role, u.birth_year
FROM s JOIN users u ON u.id = s.user_id
WHERE u.status = 'active'
"""

LIST_SESSIONS = """
SELECT id, created_at, last_seen_at, expires_at, user_agent, ip
FROM sessions
WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
"""

REVOKE_SESSION = """
UPDATE sessions SET revoked_at = now()
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
RETURNING id
"""

REVOKE_ALL_SESSIONS = "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"

PRUNE_SESSIONS = """
DELETE FROM sessions
WHERE id IN (
    SELECT id FROM sessions
    WHERE expires_at < now() - interval '7 days' OR revoked_at < now() - interval '7 days'
    LIMIT 10000
)
"""

# A user the viewer may see: active (a lapsed suspension counts) and not blocking the viewer.
# $2 may be NULL (anonymous).
VISIBLE_USER = """
SELECT u.id FROM users u
WHERE lower(u.handle) = lower($1) AND account_active(u.status, u.suspended_until)
  AND ($2::bigint IS NULL OR NOT EXISTS (
      SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $2))
"""

PROFILE = """
SELECT u.id, u.handle, u.display_name, u.bio, u.avatar_url, u.follower_count, u.following_count,
       u.created_at,
       EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = u.id) AS following,
       EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = u.id AND f.followee_id = $2) AS followed_by,
       EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $2 AND b.blocked_id = u.id) AS blocking,
       EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = $2 AND m.muted_id = u.id
               AND (m.until IS NULL OR m.until > now())) AS muting
FROM users u WHERE u.id = $1
"""

BLOCKED_EITHER_WAY = """
SELECT EXISTS (
    SELECT 1 FROM blocks
    WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)
)
"""

# Counters change in the same statement as the edge, so they stay exact under concurrency.
FOLLOW = """
WITH ins AS (
    INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)
    ON CONFLICT DO NOTHING RETURNING follower_id, followee_id
)
UPDATE users SET
    follower_count  = follower_count  + (CASE WHEN id = $2 THEN 1 ELSE 0 END),
    following_count = following_count + (CASE WHEN id = $1 THEN 1 ELSE 0 END)
WHERE id IN ($1, $2) AND EXISTS (SELECT 1 FROM ins)
"""

UNFOLLOW = """
WITH del AS (
    DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING 1
)
UPDATE users SET
    follower_count  = follower_count  - (CASE WHEN id = $2 THEN 1 ELSE 0 END),
    following_count = following_count - (CASE WHEN id = $1 THEN 1 ELSE 0 END)
WHERE id IN ($1, $2) AND EXISTS (SELECT 1 FROM del)
"""

BLOCK = "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
UNBLOCK = "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2"

MUTE = """
INSERT INTO mutes (muter_id, muted_id, until) VALUES ($1, $2, $3)
ON CONFLICT (muter_id, muted_id) DO UPDATE SET until = EXCLUDED.until, created_at = now()
"""
UNMUTE = "DELETE FROM mutes WHERE muter_id = $1 AND muted_id = $2"

# Followers of $1 (or, with the columns swapped, whom $1 follows), newest first, keyset on
# (created_at, id). Accounts that blocked the viewer ($2) or are not active are left out.
_CONNECTIONS = """
SELECT u.id, u.handle, u.display_name, u.avatar_url, f.created_at AS since
FROM follows f JOIN users u ON u.id = f.{other}
WHERE f.{me} = $1 AND account_active(u.status, u.suspended_until)
  AND ($2::bigint IS NULL OR NOT EXISTS (
      SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $2))
  AND ($3::timestamptz IS NULL OR (f.created_at, f.{other}) < ($3, $4))
ORDER BY f.created_at DESC, f.{other} DESC
LIMIT $5
"""
FOLLOWERS = _CONNECTIONS.format(me="followee_id", other="follower_id")
FOLLOWING = _CONNECTIONS.format(me="follower_id", other="followee_id")

ARE_MUTUALS = """
SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2)
   AND EXISTS (SELECT 1 FROM follows WHERE follower_id = $2 AND followee_id = $1)
"""

HIDDEN_AUTHORS = """
SELECT blocked_id AS user_id FROM blocks WHERE blocker_id = $1
UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1
UNION SELECT muted_id FROM mutes WHERE muter_id = $1 AND (until IS NULL OR until > now())
"""
