-- Analyser 0.5.0 fingerprints the first minute of every track (chromaprint, little-endian
-- u32 values) so that copies of one recording are found (issue 15). Rows from older
-- analysers have NULL until `motif index --reanalyze` brings them to the new analysis.
ALTER TABLE analyses ADD COLUMN fingerprint BYTEA;
