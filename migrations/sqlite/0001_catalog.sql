-- Motif catalogue, SQLite flavour. Times are Unix epoch milliseconds (BIGINT) in both
-- backends so rows decode to the same Rust types; vectors are little-endian f32 bytes.

-- change_seq: every insert, update and takedown takes MAX(change_seq) + 1 (SQLite has one writer at a time); derived
-- indexes record the last value they reflect and catch up with `change_seq > last`.

CREATE TABLE tracks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id   TEXT NOT NULL UNIQUE,
    title         TEXT,
    artists       TEXT NOT NULL DEFAULT '[]',   -- JSON array of names, in credit order
    album         TEXT,
    genre         TEXT,
    release_date  TEXT,                          -- YYYY, YYYY-MM or YYYY-MM-DD
    release_year  INTEGER,
    isrc          TEXT,
    duration_s    REAL,
    source        TEXT NOT NULL,                 -- path (relative to the input root) or URI
    content_hash  TEXT NOT NULL,                 -- blake3 of the file's bytes, hex
    codec         TEXT,
    meta_hash     TEXT NOT NULL,                 -- blake3 of the catalogue metadata
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'taken_down')),
    change_seq    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX tracks_change_seq ON tracks (change_seq);

CREATE TABLE analyses (
    track_id            BIGINT PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    analyzer_version    TEXT NOT NULL,
    features            BLOB NOT NULL,
    embedding           BLOB NOT NULL,
    embedding_space     TEXT NOT NULL,
    sample_rate         INTEGER NOT NULL,
    channels            INTEGER NOT NULL,
    tempo_bpm           REAL NOT NULL,
    tempo_confidence    REAL NOT NULL,
    key                 TEXT NOT NULL,
    mode                TEXT NOT NULL,
    key_strength        REAL NOT NULL,
    camelot             TEXT NOT NULL,
    loudness_lufs       REAL NOT NULL,
    loudness_range_lu   REAL NOT NULL,
    true_peak_dbtp      REAL NOT NULL,
    energy              REAL NOT NULL,
    danceability        REAL NOT NULL,
    brightness          REAL NOT NULL,
    percussiveness      REAL NOT NULL,
    acousticness        REAL NOT NULL,
    syncopation         REAL NOT NULL,
    harmonic_complexity REAL NOT NULL,
    repetitiveness      REAL NOT NULL,
    dynamic_complexity  REAL NOT NULL,
    onset_rate          REAL NOT NULL,
    analysed_at         BIGINT NOT NULL
);

CREATE TABLE tags (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name  TEXT NOT NULL UNIQUE,                  -- facet:value
    facet TEXT NOT NULL
);

-- No foreign keys here on purpose: tracks and tags are never deleted (a takedown is a
-- status), only the store writes these rows, and the per-row reference checks tripled the
-- time of a bulk write (bench-index, docs/MEASUREMENTS.md).
CREATE TABLE track_tags (
    track_id BIGINT NOT NULL,
    tag_id   BIGINT NOT NULL,
    score    REAL NOT NULL,
    source   TEXT NOT NULL CHECK (source IN ('analysis', 'catalog', 'editorial')),
    PRIMARY KEY (track_id, tag_id, source)
);
CREATE INDEX track_tags_tag ON track_tags (tag_id);

CREATE TABLE ingest_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    input         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    seen          BIGINT NOT NULL DEFAULT 0,
    new           BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    taken_down    BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    analysed      BIGINT NOT NULL DEFAULT 0,
    audio_seconds REAL NOT NULL DEFAULT 0
);

-- One row per item that failed in a run; cleared (resolved_at set) when a later run
-- ingests the same external id.
CREATE TABLE ingest_errors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      BIGINT NOT NULL REFERENCES ingest_runs (id),
    external_id TEXT,
    source      TEXT,
    line        BIGINT,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX ingest_errors_open ON ingest_errors (external_id) WHERE resolved_at IS NULL;

-- Normalisers fitted by `motif reindex`; the newest defines the embedding space.
CREATE TABLE embedding_spaces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    version    TEXT NOT NULL UNIQUE,
    normalizer TEXT NOT NULL,                    -- JSON, embeddings::Normalizer
    created_at BIGINT NOT NULL
);
