"""SQL of the cameo domain. Consent itself is the SQL function ``cameo_allows`` (migration
0008), so generation, publishing and every read of a clip answer it the same way."""

CAMEO_COLUMNS = """
    c.id, c.owner_id, c.kind, c.display_name, c.status, c.consent, c.rules, c.allow_remix,
    c.declared_rights, c.reference_media_id, c.licence_price_minor, c.licence_unit,
    c.licence_currency, c.revenue_share_bps, c.created_at, c.verified_at, c.deleted_at,
    u.handle, u.display_name AS owner_name, u.avatar_url
"""

# $1 cameo, $2 the caller (NULL when anonymous).
ONE = f"""
SELECT {CAMEO_COLUMNS}, cameo_allows(c.id, $2) AS usable,
       (SELECT g.status FROM cameo_grants g WHERE g.cameo_id = c.id AND g.user_id = $2) AS my_request,
       EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = c.owner_id AND b.blocked_id = $2)
                                         OR (b.blocker_id = $2 AND b.blocked_id = c.owner_id)) AS blocked
FROM cameos c JOIN users u ON u.id = c.owner_id
WHERE c.id = $1 AND c.deleted_at IS NULL
"""

MINE = f"""
SELECT {CAMEO_COLUMNS}, true AS usable, NULL AS my_request
FROM cameos c JOIN users u ON u.id = c.owner_id
WHERE c.owner_id = $1 AND c.deleted_at IS NULL AND ($2::bigint IS NULL OR c.id < $2)
ORDER BY c.id DESC LIMIT $3
"""

INSERT = """
INSERT INTO cameos (owner_id, kind, display_name, consent, rules, allow_remix, declared_rights)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
"""

OWNED_FOR_UPDATE = "SELECT * FROM cameos WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL FOR UPDATE"

UPDATE = """
UPDATE cameos SET display_name = coalesce($2, display_name), consent = coalesce($3, consent),
    rules = coalesce($4, rules), allow_remix = coalesce($5, allow_remix),
    declared_rights = coalesce($6, declared_rights), updated_at = now()
WHERE id = $1
"""

SOFT_DELETE = "UPDATE cameos SET deleted_at = now(), updated_at = now() WHERE id = $1"

CAMEO_MEDIA = """
SELECT reference_media_id AS id FROM cameos WHERE id = $1 AND reference_media_id IS NOT NULL
"""

INSERT_CHALLENGE = """
INSERT INTO cameo_challenges (cameo_id, phrase, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
RETURNING id, phrase, expires_at
"""

# Claims the challenge: only a fresh, unused one of this cameo, once.
USE_CHALLENGE = """
UPDATE cameo_challenges SET used_at = now()
WHERE id = $1 AND cameo_id = $2 AND used_at IS NULL AND expires_at > now()
RETURNING phrase
"""

CHALLENGE_STATE = "SELECT used_at, expires_at FROM cameo_challenges WHERE id = $1 AND cameo_id = $2"

SET_VERIFICATION = """
UPDATE cameos SET status = $2, reference_media_id = $3, review_note = $4, updated_at = now(),
    verified_at = CASE WHEN $2 = 'verified' THEN now() END
WHERE id = $1
"""

REVIEW = """
UPDATE cameos SET status = $2, review_note = $3, updated_at = now(),
    verified_at = CASE WHEN $2 = 'verified' THEN now() END
WHERE id = $1 AND status = 'pending_review' AND deleted_at IS NULL
RETURNING owner_id, display_name
"""

REVIEW_QUEUE = f"""
SELECT {CAMEO_COLUMNS}, false AS usable, NULL AS my_request
FROM cameos c JOIN users u ON u.id = c.owner_id
WHERE c.status = 'pending_review' AND c.deleted_at IS NULL AND ($1::bigint IS NULL OR c.id > $1)
ORDER BY c.id LIMIT $2
"""

# A request from someone who is not yet approved: a new row, or a denied / revoked one asked again.
REQUEST = """
INSERT INTO cameo_grants (cameo_id, user_id, status, note) VALUES ($1, $2, 'requested', $3)
ON CONFLICT (cameo_id, user_id) DO UPDATE
    SET status = 'requested', note = EXCLUDED.note, created_at = now(), decided_at = NULL
    WHERE cameo_grants.status IN ('denied', 'revoked')
RETURNING status
"""

GRANT_STATUS = "SELECT status FROM cameo_grants WHERE cameo_id = $1 AND user_id = $2"

DECIDE = """
UPDATE cameo_grants SET status = $3, decided_at = now()
WHERE cameo_id = $1 AND user_id = $2 AND status = ANY($4::text[])
RETURNING status
"""

GRANT = """
INSERT INTO cameo_grants (cameo_id, user_id, status, decided_at) VALUES ($1, $2, 'approved', now())
ON CONFLICT (cameo_id, user_id) DO UPDATE SET status = 'approved', decided_at = now()
"""

GRANTS = """
SELECT g.status, g.note, g.created_at, g.decided_at, u.id, u.handle, u.display_name, u.avatar_url
FROM cameo_grants g JOIN users u ON u.id = g.user_id
WHERE g.cameo_id = $1 AND ($2::text IS NULL OR g.status = $2)
  AND ($3::timestamptz IS NULL OR (g.created_at, g.user_id) < ($3, $4))
ORDER BY g.created_at DESC, g.user_id DESC LIMIT $5
"""

# Open generations by others whose makers the cameo no longer consents to.
NO_LONGER_ALLOWED_JOBS = """
SELECT DISTINCT j.id, j.user_id FROM generation_jobs j
JOIN takes t ON t.job_id = j.id AND t.status IN ('queued', 'submitted', 'in_progress')
JOIN cameos c ON c.id = $1
WHERE $1 = ANY(j.cameo_ids) AND j.user_id <> c.owner_id AND NOT cameo_allows($1, j.user_id)
"""

# Every use of the cameo: clips (published or drafts, by anyone) and generations still running.
APPEARANCES = """
SELECT * FROM (
    SELECT CASE WHEN k.status = 'draft' THEN 'draft' ELSE 'clip' END AS kind, k.id AS clip_id,
           k.job_id AS generation_id, k.status, k.prompt, k.created_at, k.author_id AS maker_id,
           EXISTS (SELECT 1 FROM cameo_removals r WHERE r.cameo_id = $1 AND r.clip_id = k.id) AS removed,
           cameo_allows($1, k.author_id) AS allowed
    FROM clips k WHERE $1 = ANY(k.cameo_ids) AND k.status IN ('draft', 'published')
    UNION ALL
    SELECT 'generation', NULL, j.id, j.status, j.prompt, j.created_at, j.user_id, false,
           cameo_allows($1, j.user_id)
    FROM generation_jobs j
    WHERE $1 = ANY(j.cameo_ids) AND j.status IN ('queued', 'in_progress')
) a
JOIN users u ON u.id = a.maker_id
WHERE ($2::timestamptz IS NULL OR (a.created_at, coalesce(a.clip_id, -a.generation_id)) < ($2, $3))
ORDER BY a.created_at DESC, coalesce(a.clip_id, -a.generation_id) DESC
LIMIT $4
"""

APPEARANCE_CLIP = """
SELECT id, author_id, status FROM clips
WHERE id = $2 AND $1 = ANY(cameo_ids) AND status IN ('draft', 'published')
"""

REMOVE_APPEARANCE = """
INSERT INTO cameo_removals (cameo_id, clip_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING removed_at
"""

SET_LICENCE = """
UPDATE cameos SET licence_price_minor = $2, licence_unit = $3, licence_currency = $4,
    revenue_share_bps = $5, updated_at = now()
WHERE id = $1
"""

# Each cameo of a clip being published: may its author use it, and what does a use cost?
FOR_CLIP = """
SELECT c.id, c.owner_id, c.display_name, c.licence_price_minor, c.licence_unit, c.licence_currency,
       cameo_allows(c.id, $2) AS allowed
FROM cameos c WHERE c.id = ANY($1::bigint[])
"""

INSERT_USAGE = """
INSERT INTO cameo_usage_entries (cameo_id, owner_id, user_id, clip_id, amount_minor, currency)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cameo_id, clip_id) DO NOTHING RETURNING id
"""

# A cameo's statement: the ledger lines of its owner's cameo earnings that this cameo caused,
# licence fees (memo cameo_id) and revenue shares of orders and refunds (memo cameo_ids).
_CAMEO_LINES = """
FROM ledger_accounts a
JOIN ledger_entries e ON e.account_id = a.id
JOIN ledger_transactions t ON t.id = e.transaction_id
LEFT JOIN clips c ON c.id = (t.memo->>'clip_id')::bigint
LEFT JOIN users u ON u.id = c.author_id
WHERE a.kind = 'cameo_earnings' AND a.owner_id = $1
  AND (t.memo->>'cameo_id' = $2::bigint::text OR t.memo->'cameo_ids' @> to_jsonb($2::bigint))
"""

# The cameo's part of the line: an order's or refund's entry is its owner's whole share, which
# holds several cameos' parts when the owner has more than one in the clip.
_AMOUNT = "coalesce((t.memo->'cameo_amounts'->>($2::bigint::text))::bigint, e.amount_minor)"

EARNINGS_TOTALS = f"""
SELECT e.currency, sum({_AMOUNT})::bigint AS amount_minor,
       count(*) FILTER (WHERE t.kind = 'cameo_licence')::bigint AS uses
{_CAMEO_LINES}
GROUP BY e.currency ORDER BY e.currency
"""

EARNINGS_LINES = f"""
SELECT e.id, t.kind, (t.memo->>'clip_id')::bigint AS clip_id, {_AMOUNT} AS amount_minor, e.currency,
       e.created_at,
       u.id AS user_id, u.handle, u.display_name, u.avatar_url
{_CAMEO_LINES}
  AND ($3::bigint IS NULL OR e.id < $3)
ORDER BY e.id DESC LIMIT $4
"""

# For authorize: each requested cameo and whether the caller may use it.
FOR_GENERATION = """
SELECT c.id, c.owner_id, c.kind, c.display_name, c.status, c.rules, c.allow_remix,
       c.reference_media_id, c.deleted_at IS NULL AS alive, cameo_allows(c.id, $2) AS allowed
FROM cameos c WHERE c.id = ANY($1::bigint[])
"""
