-- Room on every clip_vectors page, so that saving a clip's behaviour vector (the event consumer
-- does it for each clip a batch touches) is a HOT update: no new entry in the HNSW index or the
-- primary key. Without it each such update cost ~0.9 ms on 200,000 clips, with it ~0.06 ms
-- (bench/ingest.py, docs/BENCHMARKS.md). Applies to pages written from now on; existing rows
-- move as they are updated (or at once with VACUUM FULL clip_vectors).
ALTER TABLE clip_vectors SET (fillfactor = 50);
