"""SQL of the clips domain.

Every list of clips is one statement: a ``page`` CTE picks the ids (with the visibility rule
and the keyset condition), and :func:`hydrated` joins what a card shows. ``$1`` is always the
viewer's id (NULL for an anonymous caller).

Visibility is answered here because clips own it: published, and public, or the viewer's own,
or for followers and the viewer follows the author; never across a block in either direction;
and, for a clip with cameos, only while each cameo's owner still consents to its author and has
not removed it (``clip_cameos_ok``, migration 0008; its author still sees it). A viewer also
sees their own drafts.
"""

VISIBLE = """
(
    (c.status = 'published'
     AND (c.visibility = 'public'
          OR c.author_id = $1
          OR (c.visibility = 'followers'
              AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = c.author_id)))
     AND NOT EXISTS (SELECT 1 FROM blocks b
                     WHERE (b.blocker_id = c.author_id AND b.blocked_id = $1)
                        OR (b.blocker_id = $1 AND b.blocked_id = c.author_id))
     AND (c.cameo_ids = '{}' OR c.author_id = $1 OR clip_cameos_ok(c.id, c.author_id, c.cameo_ids))
     -- a suspended or banned author's clips are hidden from everyone else (moderation): one
     -- primary-key lookup per clip. Written as EXISTS, PostgreSQL 18's custom plans for many
     -- clips hashed every active user instead, for each statement (3.7 ms of the 10 a ranking's
     -- 450 candidates took, with 20,000 users; 450 lookups take 0.9)
     AND (c.author_id = $1
          OR coalesce((SELECT account_active(au.status, au.suspended_until)
                       FROM users au WHERE au.id = c.author_id), false))
     -- age-restricted clips: signed-in adults only
     AND (NOT c.age_restricted OR c.author_id = $1
          OR EXISTS (SELECT 1 FROM users av WHERE av.id = $1 AND av.birth_year IS NOT NULL
                     AND av.birth_year <= extract(year FROM now())::int - 18)))
    OR (c.status = 'draft' AND c.author_id = $1)
)
"""

# A clip's views: the impressions the event pipeline has stored (none before any).
VIEW_COUNT = "coalesce((SELECT s.impressions FROM clip_stats s WHERE s.clip_id = c.id), 0) AS view_count"

CARD_COLUMNS = f"""
    c.id, c.author_id, u.handle, u.display_name, u.avatar_url, c.status, c.caption, c.hashtags,
    c.mentions, c.visibility, c.allow_remix, c.allow_comments, c.model, c.video_media_id,
    c.poster_media_id, c.duration_ms, c.width, c.height, c.like_count,
    c.comment_count, c.share_count, c.remix_count, c.parent_id, c.root_id, c.depth, c.cameo_ids,
    c.take_id, c.created_at, c.published_at, {VIEW_COUNT},
    (p.id IS NOT NULL AND p.status = 'published') AS parent_available,
    EXISTS (SELECT 1 FROM likes l WHERE l.user_id = $1 AND l.clip_id = c.id) AS liked,
    (SELECT jsonb_agg(jsonb_build_object(
                'id', t.id, 'product_id', pr.id, 'title', pr.title, 'price_minor', pr.price_minor,
                'currency', pr.currency, 'image_url', pr.image_urls[1], 'start_ms', t.start_ms,
                'end_ms', t.end_ms, 'x', t.x, 'y', t.y) ORDER BY t.id)
     FROM product_tags t JOIN products pr ON pr.id = t.product_id
     WHERE t.clip_id = c.id AND t.removed_at IS NULL AND pr.deleted_at IS NULL) AS product_tags
"""


def hydrated(page: str, order: str, extra: str = "") -> str:
    """Cards for the ids ``page`` selects (``c.id`` plus any keys ``order`` and ``extra`` use)."""
    return f"""
WITH page AS ({page})
SELECT {CARD_COLUMNS}{extra}
FROM page
JOIN clips c ON c.id = page.id
JOIN users u ON u.id = c.author_id
LEFT JOIN clips p ON p.id = c.parent_id
ORDER BY {order}
"""


ONE = hydrated(f"SELECT c.id FROM clips c WHERE c.id = $2 AND {VISIBLE}", "c.id")

USER_CLIPS = hydrated(
    f"""
    SELECT c.id FROM clips c
    WHERE c.author_id = $2 AND c.status = 'published' AND {VISIBLE}
      AND ($3::timestamptz IS NULL OR (c.published_at, c.id) < ($3, $4))
    ORDER BY c.published_at DESC, c.id DESC
    LIMIT $5
    """,
    "c.published_at DESC, c.id DESC",
)

DRAFTS = hydrated(
    """
    SELECT c.id FROM clips c
    WHERE c.author_id = $1 AND c.status = 'draft' AND ($2::bigint IS NULL OR c.id < $2)
    ORDER BY c.id DESC
    LIMIT $3
    """,
    "c.id DESC",
)

LIKED = hydrated(
    f"""
    SELECT c.id, l.created_at AS liked_at FROM likes l JOIN clips c ON c.id = l.clip_id
    WHERE l.user_id = $1 AND c.status = 'published' AND {VISIBLE}
      AND ($2::timestamptz IS NULL OR (l.created_at, c.id) < ($2, $3))
    ORDER BY l.created_at DESC, c.id DESC
    LIMIT $4
    """,
    "page.liked_at DESC, c.id DESC",
    extra=", page.liked_at",
)

REMIXES = hydrated(
    f"""
    SELECT c.id FROM clips c
    WHERE c.parent_id = $2 AND c.status = 'published' AND {VISIBLE}
      AND ($3::timestamptz IS NULL OR (c.published_at, c.id) < ($3, $4))
    ORDER BY c.published_at DESC, c.id DESC
    LIMIT $5
    """,
    "c.published_at DESC, c.id DESC",
)

# The path from the clip up to the root of its chain, nearest first (bounded, in case of a cycle
# that cannot happen but would otherwise loop).
LINEAGE_IDS = """
WITH RECURSIVE up (id, parent_id, n) AS (
    SELECT id, parent_id, 0 FROM clips WHERE id = $1
    UNION ALL
    SELECT c.id, c.parent_id, up.n + 1 FROM clips c JOIN up ON c.id = up.parent_id WHERE up.n < 200
)
SELECT id FROM up ORDER BY n DESC
"""

MANY = hydrated(f"SELECT c.id FROM clips c WHERE c.id = ANY($2::bigint[]) AND {VISIBLE}", "c.id")

# Published clips as anyone sees them ($1: no viewer), for cards whose visibility the caller
# has settled already (a feed session's clips that nothing could have hidden since ranking).
PUBLISHED = hydrated(
    "SELECT c.id FROM clips c WHERE c.id = ANY($2::bigint[]) AND c.status = 'published'", "c.id"
)

# Remixes below a clip, level by level: at most $3 children per clip (most remixed first) and
# $2 levels deep. Visibility is applied when the nodes are hydrated.
TREE_IDS = f"""
WITH RECURSIVE down (id, parent_id, level) AS (
    SELECT c.id, NULL::bigint, 0 FROM clips c WHERE c.id = $4
    UNION ALL
    SELECT child.id, child.parent_id, down.level + 1
    FROM down
    CROSS JOIN LATERAL (
        SELECT c.id, c.parent_id FROM clips c
        WHERE c.parent_id = down.id AND c.status = 'published' AND {VISIBLE}
        ORDER BY c.remix_count DESC, c.published_at DESC, c.id DESC
        LIMIT $3
    ) child
    WHERE down.level < $2
)
SELECT id, parent_id, level,
       (SELECT count(*) FROM clips k WHERE k.parent_id = down.id AND k.status = 'published') AS children
FROM down
"""

PUBLISH = """
UPDATE clips SET status = 'published', caption = $3, hashtags = $4, mentions = $5, visibility = $6,
    allow_remix = $7, allow_comments = $8, published_at = now(), updated_at = now()
WHERE take_id = $1 AND author_id = $2 AND status = 'draft'
RETURNING id, parent_id, cameo_ids, duration_ms
"""

DRAFT_STATE = "SELECT id, status, author_id FROM clips WHERE take_id = $1"

TAKE_STATE = "SELECT status FROM takes WHERE id = $1 AND user_id = $2"

BUMP_REMIXES = "UPDATE clips SET remix_count = remix_count + $2 WHERE id = $1 RETURNING author_id"


UPDATE = """
UPDATE clips SET
    caption = coalesce($3, caption),
    hashtags = coalesce($4, hashtags),
    mentions = coalesce($5, mentions),
    visibility = coalesce($6, visibility),
    allow_remix = coalesce($7, allow_remix),
    allow_comments = coalesce($8, allow_comments),
    updated_at = now()
WHERE id = $1 AND author_id = $2 AND status IN ('draft', 'published')
RETURNING id
"""

DELETE = """
UPDATE clips SET status = 'deleted', updated_at = now()
WHERE id = $1 AND author_id = $2 AND status IN ('draft', 'published')
RETURNING status, parent_id, video_media_id, poster_media_id, published_at
"""

USERS_BY_HANDLE = "SELECT id, lower(handle) AS handle FROM users WHERE lower(handle) = ANY($1::text[])"

# What a breakdown of a published clip reads: its words and its counters.
SOURCE = f"""
SELECT c.id, c.author_id, c.prompt, c.caption, c.duration_ms, c.like_count, c.comment_count,
       c.share_count, c.remix_count, {VIEW_COUNT}
FROM clips c WHERE c.id = $2 AND c.status = 'published' AND {VISIBLE}
"""
