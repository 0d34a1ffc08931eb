-- The W3C traceparent of a job's submission, so the worker that runs it continues the same trace.
ALTER TABLE jobs ADD COLUMN traceparent text NOT NULL DEFAULT '';
