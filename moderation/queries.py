"""SQL of reports, cases, the queue, decisions and the audit log."""

from backend.clips.queries import VISIBLE

# What a reporter can see, and whose it is. $1 the reporter, $2 the target's id.
CLIP_SUBJECT = f"SELECT c.author_id FROM clips c WHERE c.id = $2 AND c.status = 'published' AND {VISIBLE}"
COMMENT_SUBJECT = f"""
SELECT k.author_id FROM comments k JOIN clips c ON c.id = k.clip_id
WHERE k.id = $2 AND k.status = 'visible' AND c.status = 'published' AND {VISIBLE}
"""
USER_SUBJECT = """
SELECT u.id FROM users u
WHERE u.id = $2 AND account_active(u.status, u.suspended_until)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = u.id AND b.blocked_id = $1)
                                            OR (b.blocker_id = $1 AND b.blocked_id = u.id))
"""
CAMEO_SUBJECT = """
SELECT m.owner_id FROM cameos m
WHERE m.id = $2 AND m.deleted_at IS NULL AND (m.status = 'verified' OR m.owner_id = $1)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = m.owner_id AND b.blocked_id = $1)
                                            OR (b.blocker_id = $1 AND b.blocked_id = m.owner_id))
"""

OPEN_CASE = """
INSERT INTO moderation_cases (target, target_id, subject_id) VALUES ($1, $2, $3)
ON CONFLICT (target, target_id) WHERE status = 'open' AND kind = 'report'
DO UPDATE SET updated_at = now()
RETURNING id
"""

COUNT_REPORT = """
UPDATE moderation_cases
SET report_count = report_count + 1,
    reasons = CASE WHEN $2 = ANY(reasons) THEN reasons ELSE reasons || $2 END, updated_at = now()
WHERE id = $1
"""

COUNT_FLAG = """
UPDATE moderation_cases
SET auto_flags = auto_flags + 1,
    reasons = CASE WHEN $2 = ANY(reasons) THEN reasons ELSE reasons || $2 END, updated_at = now()
WHERE id = $1
"""

REPORT_COLUMNS = "id, case_id, target, target_id, reason, note, start_ms, end_ms, created_at"

INSERT_REPORT = f"""
INSERT INTO reports (case_id, reporter_id, target, target_id, reason, note, start_ms, end_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (case_id, reporter_id) DO NOTHING
RETURNING {REPORT_COLUMNS}
"""

EXISTING_REPORT = f"SELECT {REPORT_COLUMNS} FROM reports WHERE case_id = $1 AND reporter_id = $2"

MY_REPORTS = f"""
SELECT {REPORT_COLUMNS} FROM reports WHERE reporter_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""

CASE_REPORTS = f"SELECT {REPORT_COLUMNS} FROM reports WHERE case_id = $1 ORDER BY id"

# Priority: reports, automatic flags (weighted), reach (views of a clip, followers of the
# account), and appeals first among equals.
CASE_COLUMNS = """
m.id, m.kind, m.target, m.target_id, m.subject_id, m.status, m.report_count, m.auto_flags, m.reasons,
m.claimed_by, m.claimed_until, m.decided_by, m.action, m.action_reason, m.decided_at, m.appeal_of,
m.created_at, m.updated_at,
(m.report_count + 3 * m.auto_flags + CASE WHEN m.kind = 'appeal' THEN 5 ELSE 0 END
 + ln(1 + CASE WHEN m.target = 'clip'
     THEN coalesce((SELECT s.impressions FROM clip_stats s WHERE s.clip_id = m.target_id), 0)
     ELSE coalesce((SELECT u.follower_count FROM users u WHERE u.id = m.subject_id), 0)
 END))::float8 AS priority,
m.statement
"""

CASE = f"SELECT {CASE_COLUMNS} FROM moderation_cases m WHERE m.id = $1"

LOCK_CASE = f"SELECT {CASE_COLUMNS} FROM moderation_cases m WHERE m.id = $1 FOR UPDATE OF m"

# Open cases this moderator may take: unclaimed, claimed by them, or a claim that lapsed; an
# appeal never goes to the moderator who made the decision appealed. Keyset paging on
# (priority, id) after ($2, $3): a case decided meanwhile does not shift the next page.
QUEUE = f"""
SELECT * FROM (
    SELECT {CASE_COLUMNS} FROM moderation_cases m
    WHERE m.status = 'open'
      AND (m.claimed_by IS NULL OR m.claimed_by = $1 OR m.claimed_until < now())
      AND NOT EXISTS (SELECT 1 FROM moderation_cases d WHERE d.id = m.appeal_of AND d.decided_by = $1)
) q
WHERE $2::float8 IS NULL OR q.priority < $2 OR (q.priority = $2 AND q.id > $3)
ORDER BY q.priority DESC, q.id
LIMIT $4
"""

CLAIM = """
UPDATE moderation_cases
SET claimed_by = $2, claimed_until = now() + make_interval(mins => $3), updated_at = now()
WHERE id = $1
"""

DECIDE = """
UPDATE moderation_cases
SET status = 'decided', decided_by = $2, action = $3, action_reason = $4, decided_at = now(),
    claimed_by = NULL, claimed_until = NULL, updated_at = now()
WHERE id = $1
"""

APPEALABLE = """
SELECT c.id AS case_id, c.action, c.action_reason AS reason, c.target, c.target_id, c.decided_at
FROM moderation_cases c
WHERE c.subject_id = $1 AND c.kind = 'report' AND c.status = 'decided' AND c.action = ANY($2::text[])
  AND NOT EXISTS (SELECT 1 FROM moderation_cases a WHERE a.appeal_of = c.id)
ORDER BY c.decided_at DESC
LIMIT 20
"""

INSERT_APPEAL = """
INSERT INTO moderation_cases (kind, target, target_id, subject_id, appeal_of, reasons, statement)
VALUES ('appeal', $1, $2, $3, $4, '{appeal}', $5)
ON CONFLICT (appeal_of) WHERE kind = 'appeal' DO NOTHING
RETURNING id
"""

AUDIT = """
INSERT INTO moderation_audit (actor_id, action, case_id, target, target_id, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

AUDIT_PAGE = """
SELECT id, actor_id, action, case_id, target, target_id, reason, detail, at FROM moderation_audit
WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR target = $2)
  AND ($3::bigint IS NULL OR target_id = $3)
ORDER BY id DESC LIMIT $4
"""
