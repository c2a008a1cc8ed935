"""SQL of the generation domain: jobs, takes and the daily quota."""

JOB_COLUMNS = """
    j.id, j.user_id, j.prompt, j.provider_prompt, j.model, j.seconds, j.width, j.height,
    j.takes_requested, j.cameo_ids, j.remix_of, j.product_id, j.reference_media_id, j.status,
    j.created_at, j.updated_at, j.finished_at
"""

TAKE_COLUMNS = """
    t.id, t.job_id, t.position, t.status, t.model, t.provider, t.provider_job_id, t.progress,
    t.attempts, t.error_code, t.error_message, t.reserved_seconds, t.cost_minor, t.currency,
    t.clip_id, t.duration_ms, t.width, t.height, t.seed, t.created_at, t.finished_at, t.progressed_at,
    t.fallback_from
"""

INSERT_JOB = """
INSERT INTO generation_jobs (
    user_id, prompt, provider_prompt, model, seconds, width, height, takes_requested,
    cameo_ids, remix_of, product_id, reference_media_id
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id
"""

INSERT_TAKES = """
INSERT INTO takes (job_id, user_id, position, model, reserved_seconds, currency, seed)
SELECT $1, $2, p, $3, $4, $5, $6 + p FROM generate_series(0, $7 - 1) AS p
RETURNING id
"""

JOB = f"SELECT {JOB_COLUMNS} FROM generation_jobs j WHERE j.id = $1 AND j.user_id = $2"

JOBS_PAGE = f"""
SELECT {JOB_COLUMNS} FROM generation_jobs j
WHERE j.user_id = $1 AND ($2::bigint IS NULL OR j.id < $2)
ORDER BY j.id DESC
LIMIT $3
"""

# Best first once the judge has scored them (take_scores), in order of position until then.
TAKES_OF_JOBS = f"""
SELECT {TAKE_COLUMNS}, s.overall, s.realism, s.product_consistency, s.voice_over, s.script_structure,
       s.judge
FROM takes t LEFT JOIN take_scores s ON s.take_id = t.id
WHERE t.job_id = ANY($1::bigint[])
ORDER BY t.job_id, s.overall DESC NULLS LAST, t.position
"""

FINISHED_TAKE = """
SELECT t.id AS take_id, t.user_id, j.prompt, j.provider_prompt, j.product_id,
       j.seconds AS requested_seconds, j.width AS requested_width, j.height AS requested_height,
       t.video_media_id, t.poster_media_id, t.duration_ms, t.width, t.height
FROM takes t JOIN generation_jobs j ON j.id = t.job_id
WHERE t.id = $1 AND t.status = 'succeeded'
"""

# Quota: add to today's reservation only while it stays within the limit ($4). The caller has
# already checked that the request alone fits, which covers the first insert of the day.
RESERVE_QUOTA = """
INSERT INTO generation_quota AS q (user_id, day, reserved_seconds) VALUES ($1, $2, $3)
ON CONFLICT (user_id, day) DO UPDATE SET reserved_seconds = q.reserved_seconds + EXCLUDED.reserved_seconds
WHERE q.reserved_seconds + EXCLUDED.reserved_seconds <= $4
RETURNING reserved_seconds
"""

RELEASE_QUOTA = """
UPDATE generation_quota SET reserved_seconds = greatest(reserved_seconds - $3, 0)
WHERE user_id = $1 AND day = $2
"""

QUOTA_TODAY = "SELECT reserved_seconds FROM generation_quota WHERE user_id = $1 AND day = $2"

SPEND = """
SELECT coalesce(sum(t.cost_minor) FILTER (WHERE t.finished_at >= $2), 0)::bigint AS today,
       coalesce(sum(t.cost_minor), 0)::bigint AS total
FROM takes t WHERE t.user_id = $1 AND t.status = 'succeeded'
"""

OPEN_STATUSES = "('queued', 'submitted', 'in_progress')"

CANCEL_OPEN_TAKES = f"""
UPDATE takes SET status = 'canceled', finished_at = now(), progressed_at = now(),
    error_code = 'canceled', error_message = 'canceled by you'
WHERE job_id = $1 AND status IN {OPEN_STATUSES}
RETURNING id, provider, provider_job_id, reserved_seconds
"""

# The worker's view of one take, locked so that two deliveries of the same job serialise.
TAKE_RUN = f"""
SELECT {TAKE_COLUMNS}, j.user_id, j.provider_prompt, j.seconds AS job_seconds, j.width AS job_width,
       j.height AS job_height, j.cameo_ids, j.remix_of, j.product_id, j.reference_media_id,
       j.created_at AS job_created_at, j.prompt AS job_prompt, j.model AS job_model
FROM takes t JOIN generation_jobs j ON j.id = t.job_id
WHERE t.id = $1
FOR UPDATE OF t
"""

MARK_SUBMITTED = f"""
UPDATE takes SET status = 'submitted', provider = $2, provider_job_id = $3, submitted_at = now(),
    progressed_at = now()
WHERE id = $1 AND status IN {OPEN_STATUSES}
RETURNING id
"""

MARK_PROGRESS = f"""
UPDATE takes SET status = 'in_progress', progress = greatest(progress, $2), progressed_at = now()
WHERE id = $1 AND status IN {OPEN_STATUSES}
RETURNING id
"""

MARK_RETRY = f"""
UPDATE takes SET status = 'queued', provider = NULL, provider_job_id = NULL, progress = 0,
    attempts = $2, model = $3, fallback_from = coalesce($4, fallback_from),
    error_code = $5, error_message = $6, progressed_at = now()
WHERE id = $1 AND status IN {OPEN_STATUSES}
RETURNING id
"""

TOUCH = f"UPDATE takes SET progressed_at = now() WHERE id = $1 AND status IN {OPEN_STATUSES}"

MARK_SUCCEEDED = f"""
UPDATE takes SET status = 'succeeded', progress = 100, finished_at = now(), progressed_at = now(),
    video_media_id = $2, poster_media_id = $3, duration_ms = $4, width = $5, height = $6,
    cost_minor = $7, currency = $8, error_code = NULL, error_message = NULL
WHERE id = $1 AND status IN {OPEN_STATUSES}
RETURNING id
"""

SET_CLIP = "UPDATE takes SET clip_id = $2 WHERE id = $1"

MARK_FAILED = f"""
UPDATE takes SET status = 'failed', finished_at = now(), progressed_at = now(),
    error_code = $2, error_message = $3, cost_minor = 0
WHERE id = $1 AND status IN {OPEN_STATUSES}
RETURNING reserved_seconds
"""

# A job's status follows its takes: open while any take is open; otherwise succeeded, partial,
# canceled or failed. Returns the new status only when it changed.
# Taken before REFRESH_JOB, in its own statement: takes of one job finishing at once then
# refresh one after the other, each reading the others' committed states (READ COMMITTED
# gives every statement a fresh snapshot), so the last one always sees the job finished.
LOCK_JOB = "SELECT id FROM generation_jobs WHERE id = $1 FOR UPDATE"

REFRESH_JOB = """
WITH agg AS (
    SELECT count(*) FILTER (WHERE status IN ('queued', 'submitted', 'in_progress')) AS open,
           count(*) FILTER (WHERE status IN ('submitted', 'in_progress')) AS running,
           count(*) FILTER (WHERE status = 'succeeded') AS ok,
           count(*) FILTER (WHERE status = 'canceled') AS canceled,
           count(*) AS total
    FROM takes WHERE job_id = $1
), next AS (
    SELECT CASE
        WHEN open > 0 AND (running > 0 OR ok > 0) THEN 'in_progress'
        WHEN open > 0 THEN 'queued'
        WHEN ok = total THEN 'succeeded'
        WHEN ok > 0 THEN 'partial'
        WHEN canceled > 0 THEN 'canceled'
        ELSE 'failed' END AS status,
        open = 0 AS finished
    FROM agg
)
UPDATE generation_jobs j SET status = next.status, updated_at = now(),
    finished_at = CASE WHEN next.finished THEN coalesce(j.finished_at, now()) END
FROM next
WHERE j.id = $1 AND j.status IS DISTINCT FROM next.status
RETURNING j.status, j.user_id
"""

STALLED_TAKES = f"""
SELECT id, attempts FROM takes
WHERE status IN {OPEN_STATUSES} AND progressed_at < now() - make_interval(secs => $1)
ORDER BY progressed_at
LIMIT 500
"""

TAKE_BY_PROVIDER_JOB = "SELECT id FROM takes WHERE provider = $1 AND provider_job_id = $2"
