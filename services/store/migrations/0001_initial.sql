-- storywire store schema, version 1.

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    idempotency_key  text UNIQUE,
    name             text        NOT NULL DEFAULT '',
    spec             bytea       NOT NULL,              -- serialized storywire.v1.JobSpec
    state            text        NOT NULL,
    error            text        NOT NULL DEFAULT '',
    trace_id         text        NOT NULL DEFAULT '',
    stages           jsonb       NOT NULL DEFAULT '{}', -- stage name -> counters and times
    totals           bytea,                             -- serialized storywire.v1.SynthesisTotals
    attempts         integer     NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    lease_token      uuid,
    lease_owner      text,
    lease_expires_at timestamptz,
    lease_seconds    double precision NOT NULL DEFAULT 30,
    event_seq        bigint      NOT NULL DEFAULT 0,    -- last sequence number used in job_events
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_runnable_idx ON jobs (created_at)
    WHERE state NOT IN ('done', 'failed', 'cancelled');

CREATE TABLE articles (
    id            text PRIMARY KEY,                     -- digest of canonical_url and content_hash
    url           text        NOT NULL,
    canonical_url text        NOT NULL,
    content_hash  text        NOT NULL,
    title         text        NOT NULL DEFAULT '',
    body          text        NOT NULL DEFAULT '',
    published_at  timestamptz,
    source_url    text        NOT NULL DEFAULT '',
    author        text        NOT NULL DEFAULT '',
    fetched_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- The id is a digest of (canonical_url, content_hash), so the primary key is the idempotency key.

CREATE TABLE stories (
    id                text PRIMARY KEY,                 -- hex digest of job id and cluster key
    job_id            uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    cluster_key       text        NOT NULL,
    title             text        NOT NULL,
    summary           text        NOT NULL,
    model             text        NOT NULL DEFAULT '',
    prompt_version    text        NOT NULL DEFAULT '',
    prompt_tokens     bigint      NOT NULL DEFAULT 0,
    completion_tokens bigint      NOT NULL DEFAULT 0,
    usage_estimated   boolean     NOT NULL DEFAULT false,
    cache_hit         boolean     NOT NULL DEFAULT false,
    cache_tier        smallint    NOT NULL DEFAULT 0,
    fallback          boolean     NOT NULL DEFAULT false,
    fallback_reason   text        NOT NULL DEFAULT '',
    latency_ms        double precision NOT NULL DEFAULT 0,
    attempts          integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, cluster_key)
);
CREATE INDEX stories_created_idx ON stories (created_at DESC, id DESC);
CREATE INDEX stories_job_created_idx ON stories (job_id, created_at DESC, id DESC);

-- No foreign key to articles: stories and articles are written by independent streams of one job,
-- and a story may be stored before the last of its articles; GetStory returns the articles it finds.
CREATE TABLE story_articles (
    story_id   text    NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    article_id text    NOT NULL,
    position   integer NOT NULL,
    PRIMARY KEY (story_id, article_id)
);
CREATE INDEX story_articles_article_idx ON story_articles (article_id);

-- Durable, ordered event log per job: WatchJob replays it by sequence number, so a watcher never misses an
-- event even when notifications are coalesced or its connection to the listener was lost.
CREATE TABLE job_events (
    job_id     uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq        bigint      NOT NULL,
    event      bytea       NOT NULL,                    -- serialized storywire.v1.WatchJobResponse
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);
