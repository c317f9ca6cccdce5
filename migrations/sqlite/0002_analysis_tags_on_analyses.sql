-- Postgres moved analysis tags onto the analysis row and made `track_tags` a view
-- (postgres/0002, for bulk-write speed). SQLite keeps its `track_tags` table: it is the
-- embedded default, written one transaction at a time, and has no write-speed target.
-- This file keeps the two folders' numbering in step.
SELECT 1;
