-- Bulk-write speed (issue 3: >= 20,000 tracks/s at 1M on 2 cores). `bench-index` showed
-- the server's time per 2,000-track batch going to the ~18,000 tag links (half of it),
-- and to the per-row foreign-key check of `analyses` (a key-share lock on the track row
-- just inserted). So:
--
-- 1. An analysis's own tags (derived from its attributes, replaced whenever it is
--    re-analysed) are stored on the analysis row as two parallel arrays: one row per
--    track instead of ~7. Catalogue and editorial links stay rows, in `track_tag_links`.
-- 2. `track_tags` becomes a view over both with the columns it always had, so every
--    reader (and any SQL a user writes) sees the same relation as on SQLite.
-- 3. `analyses` no longer references `tracks`: tracks are never deleted (a takedown is a
--    status), only the store writes these rows, and a batch may now write its analyses
--    before its tracks (see `catalog::postgres::write_batch`).

ALTER TABLE analyses
    ADD COLUMN tag_ids    BIGINT[]           NOT NULL DEFAULT '{}',
    ADD COLUMN tag_scores DOUBLE PRECISION[] NOT NULL DEFAULT '{}';

UPDATE analyses a SET tag_ids = s.ids, tag_scores = s.scores
FROM (
    SELECT track_id, array_agg(tag_id ORDER BY tag_id) AS ids,
           array_agg(score ORDER BY tag_id) AS scores
    FROM track_tags WHERE source = 'analysis' GROUP BY track_id
) s
WHERE a.track_id = s.track_id;

DELETE FROM track_tags WHERE source = 'analysis';
ALTER TABLE track_tags RENAME TO track_tag_links;
ALTER INDEX track_tags_tag RENAME TO track_tag_links_tag;
ALTER INDEX track_tags_pkey RENAME TO track_tag_links_pkey;
ALTER TABLE track_tag_links DROP CONSTRAINT track_tags_source_check;
ALTER TABLE track_tag_links ADD CONSTRAINT track_tag_links_source_check
    CHECK (source IN ('catalog', 'editorial'));

ALTER TABLE analyses DROP CONSTRAINT analyses_track_id_fkey;

CREATE VIEW track_tags (track_id, tag_id, score, source) AS
    SELECT track_id, tag_id, score, source FROM track_tag_links
    UNION ALL
    SELECT a.track_id, u.tag_id, u.score, 'analysis'
    FROM analyses a CROSS JOIN LATERAL unnest(a.tag_ids, a.tag_scores) AS u (tag_id, score);
