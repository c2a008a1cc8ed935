-- Deleted media keep their row (takes and clips point at it) but lose their bytes: a job
-- purges the stored object some minutes after deletion and records when.
ALTER TABLE media ADD COLUMN purged_at timestamptz;
DROP INDEX media_deleted_idx;
CREATE INDEX media_purge_idx ON media (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
