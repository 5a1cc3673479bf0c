-- The W3C traceparent of the request that made a batch: its callbacks' runs link to it.
ALTER TABLE batches ADD COLUMN traceparent text;
