-- A clip's views are its impressions in clip_stats: clips.view_count was a second copy of that
-- counter, bumped by the event consumer in the same transaction. Keeping it meant rewriting a
-- wide clips row (and its indexes' heap pointers, unless HOT) for every clip a batch of events
-- showed: 11% of PostgreSQL's time storing events, and with random clips nearly every update
-- dirtied another page, whose first write after a checkpoint is a full 8 kB page image in the
-- WAL (136 MB of a 200,000-event run). Readers (cards, breakdowns, moderation priority, CPM
-- billing) now read clip_stats.
ALTER TABLE clips DROP COLUMN view_count;
