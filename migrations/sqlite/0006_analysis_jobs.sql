-- The analysis work queue is Postgres's alone (the embedded store keeps its single-process
-- path); this no-op keeps the numbering in step.
SELECT 1;
