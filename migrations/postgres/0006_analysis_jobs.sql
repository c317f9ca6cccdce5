-- The analysis work queue (issue 17): a delivery is planned into one job per track to
-- analyse; any number of workers claim jobs (`FOR UPDATE SKIP LOCKED`), hold them under a
-- lease they renew, and write the analysis and the job's completion in one transaction.
-- Times are epoch milliseconds of the database's clock, so workers' clocks never matter.
CREATE TABLE analysis_jobs (
    id               BIGSERIAL PRIMARY KEY,
    run_id           BIGINT NOT NULL REFERENCES ingest_runs (id),
    external_id      TEXT NOT NULL,
    spec             JSONB NOT NULL,       -- indexer::jobs::JobSpec: metadata, hashes, path
    existing         BOOLEAN NOT NULL,     -- the track was stored when planned (updated, not new)
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'failed', 'superseded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    last_error_kind  TEXT,
    last_error       TEXT,
    audio_seconds    DOUBLE PRECISION,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
-- What a claim scans: queued jobs due, and running ones whose lease may have expired.
CREATE INDEX analysis_jobs_claimable ON analysis_jobs (id) WHERE state IN ('queued', 'running');
CREATE INDEX analysis_jobs_run ON analysis_jobs (run_id, state);
CREATE INDEX analysis_jobs_pending_ext ON analysis_jobs (external_id)
    WHERE state IN ('queued', 'running');

-- A run planned into jobs that no process works in itself is `queued` until its last job
-- ends (then `finished`, closed by the worker that ended it).
ALTER TABLE ingest_runs DROP CONSTRAINT ingest_runs_status_check;
ALTER TABLE ingest_runs ADD CONSTRAINT ingest_runs_status_check
    CHECK (status IN ('running', 'queued', 'finished', 'interrupted'));
