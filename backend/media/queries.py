"""SQL of the media domain."""

MEDIA_COLUMNS = """
    id, owner_id, kind, storage_key, content_type, bytes, sha256, width, height, duration_ms,
    created_at, deleted_at
"""

INSERT_MEDIA = f"""
INSERT INTO media (owner_id, kind, storage_key, content_type, bytes, sha256, width, height, duration_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING {MEDIA_COLUMNS}
"""

MEDIA_BY_ID = f"SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1 AND deleted_at IS NULL"

OWNED_MEDIA = f"SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL"

DELETE_MEDIA = "UPDATE media SET deleted_at = now() WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL"

DELETE_OWNED_UPLOAD = """
UPDATE media SET deleted_at = now()
WHERE id = $1 AND owner_id = $2 AND kind = 'image' AND deleted_at IS NULL
RETURNING id
"""

# Skip-locked so that several workers purge different rows.
DUE_FOR_PURGE = """
SELECT id, storage_key FROM media
WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND deleted_at < now() - make_interval(secs => $1)
ORDER BY deleted_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""

MARK_PURGED = "UPDATE media SET purged_at = now() WHERE id = ANY($1::bigint[])"
