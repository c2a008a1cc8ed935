"""SQL of the feed. ``$1`` is the viewer where a query has one.

Queries that filter clips use the clips domain's visibility predicate (``{visible}``), so the
feed can never show what ``GET /v1/clips/{id}`` would refuse.
"""

CLIP_TEXT = """
SELECT c.id, c.prompt, c.caption, c.hashtags, b.behaviour,
       coalesce(s.likes + s.completes + s.shares, 0) AS engaged
FROM clips c
LEFT JOIN clip_behaviour b ON b.clip_id = c.id
LEFT JOIN clip_stats s ON s.clip_id = c.id
WHERE c.id = ANY($1::bigint[]) AND c.status IN ('draft', 'published')
"""

SAVE_CONTENT = """
INSERT INTO clip_vectors (clip_id, content, embedding, teen_safe) VALUES ($1, $2, $3, $4)
ON CONFLICT (clip_id) DO UPDATE
    SET content = EXCLUDED.content, embedding = EXCLUDED.embedding, teen_safe = EXCLUDED.teen_safe,
        updated_at = now()
"""

PREFERENCES = "SELECT text, more, fewer, updated_at FROM feed_preferences WHERE user_id = $1"

SAVE_PREFERENCES = """
INSERT INTO feed_preferences (user_id, text, more, fewer) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE SET text = EXCLUDED.text, more = EXCLUDED.more, fewer = EXCLUDED.fewer,
    updated_at = now()
"""

DELETE_PREFERENCES = "DELETE FROM feed_preferences WHERE user_id = $1"

SAVE_STEERING = """
INSERT INTO user_vectors (user_id, steer_plus, steer_minus) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET steer_plus = EXCLUDED.steer_plus, steer_minus = EXCLUDED.steer_minus
"""

# A viewer the worker may rank a feed for (see feed.service.prerank).
ACTIVE_VIEWER = "SELECT birth_year FROM users WHERE id = $1 AND account_active(status, suspended_until)"
USER_VECTORS = "SELECT interest, steer_plus, steer_minus FROM user_vectors WHERE user_id = $1"

# Taste cohorts (feed.cohorts): the vectors of active viewers, a random sample of them to find
# the cohorts, then all of them in pages by id to note each one's cohort.
TASTE_SAMPLE = """
SELECT uv.user_id, u.birth_year, uv.interest, uv.steer_plus, uv.steer_minus
FROM user_vectors uv JOIN users u ON u.id = uv.user_id
WHERE account_active(u.status, u.suspended_until)
ORDER BY random()
LIMIT $1
"""
TASTES_AFTER = """
SELECT uv.user_id, u.birth_year, uv.interest, uv.steer_plus, uv.steer_minus
FROM user_vectors uv JOIN users u ON u.id = uv.user_id
WHERE uv.user_id > $1 AND account_active(u.status, u.suspended_until)
ORDER BY uv.user_id
LIMIT $2
"""

# What a list ranked for no viewer (a taste cohort's, $2 its clips as text: backend.db.id_array)
# must not show viewer $1, as CANDIDATE_FEATURES and the visibility predicate would leave out
# for them: creators they hid or muted, anyone either of them blocked (with their own clips: the
# caller adds them), clips they liked or marked not interested.
NOT_FOR_VIEWER = """
SELECT array(
           SELECT blocked_id FROM blocks WHERE blocker_id = $1
           UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = $1
           UNION ALL SELECT creator_id FROM hidden_creators WHERE user_id = $1
           UNION ALL SELECT muted_id FROM mutes WHERE muter_id = $1 AND (until IS NULL OR until > now())
       ) AS authors,
       array(
           SELECT clip_id FROM likes WHERE user_id = $1 AND clip_id = ANY($2::text::bigint[])
           UNION ALL
           SELECT clip_id FROM not_interested WHERE user_id = $1 AND clip_id = ANY($2::text::bigint[])
       ) AS clips
"""

# What the viewer engaged with most recently and positively (liked, shared, watched to the end),
# as content vectors weighted by how often: the material their interests are clustered from.
# The events primary key leads with the user, so this reads one index range per partition.
RECENT_POSITIVE = """
SELECT v.content, count(*)::float8 AS weight
FROM (
    SELECT clip_id FROM events
    WHERE user_id = $1 AND type IN ('like', 'share', 'complete') AND at > now() - interval '90 days'
    ORDER BY at DESC
    LIMIT $2
) e
JOIN clip_vectors v ON v.clip_id = e.clip_id
GROUP BY v.clip_id
"""

NOT_INTERESTED = "INSERT INTO not_interested (user_id, clip_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
UNDO_NOT_INTERESTED = "DELETE FROM not_interested WHERE user_id = $1 AND clip_id = $2 RETURNING clip_id"
HIDE_CREATOR = "INSERT INTO hidden_creators (user_id, creator_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
UNHIDE_CREATOR = "DELETE FROM hidden_creators WHERE user_id = $1 AND creator_id = $2 RETURNING creator_id"

# The HNSW index is on embedding::halfvec(256); the query must use the same expression. The
# caller sets hnsw.iterative_scan so the filters cannot starve the result. Only the ids: ranking
# takes each candidate's similarity to the taste from CANDIDATE_FEATURES.
NEAREST = """
SELECT v.clip_id
FROM clip_vectors v JOIN clips c ON c.id = v.clip_id
WHERE c.status = 'published' AND c.visibility = 'public' AND c.author_id IS DISTINCT FROM $1
ORDER BY v.embedding::halfvec(256) <=> $2::vector(256)::halfvec(256)
LIMIT $3
"""

FOLLOWED_RECENT = """
SELECT c.id FROM follows f
JOIN clips c ON c.author_id = f.followee_id AND c.status = 'published'
    AND c.visibility IN ('public', 'followers')
WHERE f.follower_id = $1 AND c.published_at > now() - interval '14 days'
ORDER BY c.published_at DESC
LIMIT $2
"""

REMIXES_OF_LIKED = """
SELECT c.id FROM likes l
JOIN clips c ON c.parent_id = l.clip_id AND c.status = 'published' AND c.visibility = 'public'
WHERE l.user_id = $1
ORDER BY c.published_at DESC
LIMIT $2
"""

FRESH = """
SELECT c.id FROM clips c LEFT JOIN clip_stats s ON s.clip_id = c.id
WHERE c.status = 'published' AND c.visibility = 'public' AND c.published_at > now() - interval '2 days'
  AND coalesce(s.impressions, 0) < 50
ORDER BY c.published_at DESC
LIMIT $1
"""

# Every filter in one place: visible to the viewer, not their own, not from a hidden or muted
# creator, not marked not interested. Similarity to the taste vector ($4, NULL for none) and,
# for candidates the index found ($5), the words of the liked clip nearest to it ("because you
# liked …") are computed here: shipping 500 vectors to Python to do the same cost a first page
# more than the whole query.
CANDIDATE_FEATURES = """
WITH liked AS MATERIALIZED (
    SELECT coalesce(nullif(lc.caption, ''), lc.prompt) AS words, lv.embedding
    FROM likes l JOIN clips lc ON lc.id = l.clip_id JOIN clip_vectors lv ON lv.clip_id = lc.id
    WHERE l.user_id = $1
    ORDER BY l.created_at DESC
    LIMIT 20
)
SELECT c.id, c.author_id, c.hashtags, c.published_at, cardinality(c.cameo_ids) > 0 AS cameos,
       1 - (v.embedding <=> $4::vector(256)) AS similarity, near.words AS liked_near,
       s.impressions, s.likes, s.completes, s.shares, s.skips, s.negatives
FROM clips c
LEFT JOIN clip_vectors v ON v.clip_id = c.id
LEFT JOIN clip_stats s ON s.clip_id = c.id
LEFT JOIN LATERAL (
    SELECT liked.words FROM liked
    WHERE c.id = ANY($5::bigint[]) AND (liked.embedding <#> v.embedding) < -0.5
    ORDER BY liked.embedding <#> v.embedding
    LIMIT 1
) near ON true
WHERE c.id = ANY($2::bigint[]) AND c.status = 'published' AND {visible}
  AND c.author_id IS DISTINCT FROM $1
  AND NOT EXISTS (SELECT 1 FROM hidden_creators h WHERE h.user_id = $1 AND h.creator_id = c.author_id)
  AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = $1 AND m.muted_id = c.author_id
                  AND (m.until IS NULL OR m.until > now()))
  AND NOT EXISTS (SELECT 1 FROM not_interested n WHERE n.user_id = $1 AND n.clip_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM likes l WHERE l.user_id = $1 AND l.clip_id = c.id)
  AND (v.teen_safe OR NOT $3::boolean)
"""

FOLLOWING_PAGE = """
SELECT c.id FROM follows f
JOIN clips c ON c.author_id = f.followee_id
WHERE f.follower_id = $1 AND c.status = 'published' AND {visible}
  AND ($2::timestamptz IS NULL OR (c.published_at, c.id) < ($2, $3))
ORDER BY c.published_at DESC, c.id DESC
LIMIT $4
"""
