-- Each clip's behaviour vector in a narrow table of its own.
--
-- The event consumer rewrites the behaviour of every clip a batch touches (feed/store.py). In
-- clip_vectors it shared a row with `content` and `embedding`: three vector(256) values of about
-- 1 KB each made a ~3.1 KB row, over PostgreSQL's 2 KB TOAST threshold, so two of the three were
-- kept out of line (on the 200,000 seeded clips: heap 521 MB, TOAST 440 MB). Every behaviour
-- update wrote a new TOAST value (a heap insert and a TOAST index insert) and a new main row
-- version, and every read detoasted two values; PostgreSQL spent its CPU on that statement
-- during ingestion. Here a row is ~1.07 KB (header, clip_id, the 1,032-byte vector, updated_at),
-- stored inline, and the consumer touches clip_vectors only when the indexed embedding drifts.
--
-- fillfactor 75 leaves a quarter of each page free: 5 rows to an 8 KB page and ~2.7 KB spare,
-- room for two new row versions before the page must be pruned, so an update of the vector is a
-- HOT update (no new primary-key entry) even when two clips of a page move in one batch or an
-- older version is still visible to a running transaction. At the default (100) 7 rows fill a
-- page and leave ~0.6 KB, too little for one. The cost: 200,000 clips take ~40,000 pages
-- (~310 MB) instead of ~29,000 (~225 MB).
CREATE TABLE clip_behaviour (
    clip_id    bigint PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    behaviour  vector(256) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 75);

INSERT INTO clip_behaviour (clip_id, behaviour, updated_at)
SELECT clip_id, behaviour, updated_at FROM clip_vectors WHERE behaviour IS NOT NULL
ORDER BY clip_id;

-- Dropping the column only changes the catalogue: existing rows keep the old values (and their
-- TOAST) until they are next written. `VACUUM FULL clip_vectors` gives the space back at once
-- (it rewrites the table and rebuilds the HNSW index; it cannot run inside this migration's
-- transaction). clip_vectors keeps its fillfactor of 50 (0014) for now, though the reason given
-- there is gone: every update left to it changes the indexed embedding, so none can be HOT.
ALTER TABLE clip_vectors DROP COLUMN behaviour;
