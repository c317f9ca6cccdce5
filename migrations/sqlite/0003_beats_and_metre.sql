-- Analyser 0.3.0 tracks beats and metre: beats per bar as an attribute column (2, 3 or 4;
-- 0 when too few beats were tracked), and the beat times (little-endian f32 seconds) for
-- `GET /v1/tracks/{id}?include=beats`. Rows from older analysers have NULLs until
-- `motif index --reanalyze` brings them to the new analysis.
ALTER TABLE analyses ADD COLUMN beats_per_bar REAL;
ALTER TABLE analyses ADD COLUMN beats BLOB;
