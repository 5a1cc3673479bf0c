-- A job's last reported progress, kept with its history: readable after Redis let the job go.
ALTER TABLE job_history ADD COLUMN progress smallint CHECK (progress BETWEEN 0 AND 100);
ALTER TABLE job_history ADD COLUMN progress_message text;
ALTER TABLE job_history ADD COLUMN progress_at timestamptz;
