-- Link each succeeded take to the draft clip made from it, and remember which model a take
-- fell back to, so a job can be read back without asking the clips domain.
ALTER TABLE takes ADD COLUMN clip_id bigint;
ALTER TABLE takes ADD COLUMN fallback_from text;
CREATE INDEX takes_job_idx ON takes (job_id, position);
