-- Analyser 0.6.0 also keeps a fine fingerprint (chromaprint at a 23-ms hop, little-endian
-- u32 values) of tracks up to 16 s long, whose fingerprint is too short to compare when a
-- copy of them is trimmed to a few seconds (issue 15). Empty for longer tracks, NULL for rows
-- from older analysers.
ALTER TABLE analyses ADD COLUMN fine_fingerprint BLOB;
