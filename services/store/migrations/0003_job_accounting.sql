-- Per-job accounting: which articles each attempt of a job took, and the checked totals of a finished job.
ALTER TABLE jobs ADD COLUMN accounting bytea;            -- serialized storywire.v1.JobAccounting

-- The articles of one attempt of a job (PutArticles with job_id and attempt). An attempt's own rows are
-- what its final UpdateJob(DONE) is checked against, so a resumed job is never checked against articles
-- that only an earlier attempt saw.
CREATE TABLE job_articles (
    job_id     uuid    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt    integer NOT NULL,
    article_id text    NOT NULL,
    PRIMARY KEY (job_id, attempt, article_id)
);

-- Provisional stories of the job retired so far (removed from the job; counted in its accounting).
ALTER TABLE jobs ADD COLUMN retired_stories integer NOT NULL DEFAULT 0;
