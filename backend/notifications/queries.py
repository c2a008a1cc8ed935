"""SQL of the notifications domain."""

# Written only when the recipient wants this kind and nothing stands between the two accounts:
# no block either way and no live mute of the actor by the recipient.
INSERT = """
INSERT INTO notifications (recipient_id, actor_id, kind, clip_id, job_id, comment_id, data)
SELECT $1, $2, $3, $4, $5, $6, $7
WHERE NOT EXISTS (
        SELECT 1 FROM notification_settings s WHERE s.user_id = $1 AND s.kind = $3 AND NOT s.enabled)
  AND ($2::bigint IS NULL OR NOT EXISTS (
        SELECT 1 FROM blocks b
        WHERE (b.blocker_id = $1 AND b.blocked_id = $2) OR (b.blocker_id = $2 AND b.blocked_id = $1)))
  AND ($2::bigint IS NULL OR NOT EXISTS (
        SELECT 1 FROM mutes m
        WHERE m.muter_id = $1 AND m.muted_id = $2 AND (m.until IS NULL OR m.until > now())))
RETURNING id
"""

COLUMNS = """
    n.id, n.kind, n.clip_id, n.job_id, n.comment_id, n.data, n.created_at, n.read_at,
    n.actor_id, u.handle AS actor_handle, u.display_name AS actor_display_name,
    u.avatar_url AS actor_avatar_url
"""

BY_ID = f"""
SELECT n.recipient_id, {COLUMNS}
FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
WHERE n.id = $1
"""

PAGE = f"""
SELECT {COLUMNS}
FROM notifications n LEFT JOIN users u ON u.id = n.actor_id
WHERE n.recipient_id = $1 AND ($2::bigint IS NULL OR n.id < $2) AND ($4::bigint IS NULL OR n.id > $4)
ORDER BY n.id DESC
LIMIT $3
"""

MARK_READ = """
UPDATE notifications SET read_at = now()
WHERE recipient_id = $1 AND id <= $2 AND read_at IS NULL
"""

UNREAD = "SELECT count(*) FROM notifications WHERE recipient_id = $1 AND read_at IS NULL"

SETTINGS = "SELECT kind, enabled FROM notification_settings WHERE user_id = $1"

SET_KIND = """
INSERT INTO notification_settings (user_id, kind, enabled) VALUES ($1, $2, $3)
ON CONFLICT (user_id, kind) DO UPDATE SET enabled = EXCLUDED.enabled
"""
