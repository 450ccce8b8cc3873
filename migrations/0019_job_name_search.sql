-- A name search ("00042", "flowers-lr3") finds a job anywhere in its name.
-- With LIKE '%…%' that is a scan of every name (27 ms p50, 51 ms p99 over
-- 100,000 local and 100,000 SageMaker jobs); an FTS5 trigram index answers
-- any search of three characters or more from the index (server/src/training/
-- history.rs: `name_clause`). Shorter searches still scan, as before.

-- Local jobs have a stable integer key, so the index reads their names from
-- the table itself (external content) and stores only the trigrams.
CREATE VIRTUAL TABLE local_job_names USING fts5(
    name, content = 'local_jobs', content_rowid = 'id', tokenize = 'trigram case_sensitive 0'
);
INSERT INTO local_job_names (local_job_names) VALUES ('rebuild');

CREATE TRIGGER local_job_names_insert AFTER INSERT ON local_jobs BEGIN
    INSERT INTO local_job_names (rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER local_job_names_delete AFTER DELETE ON local_jobs BEGIN
    INSERT INTO local_job_names (local_job_names, rowid, name) VALUES ('delete', old.id, old.name);
END;
CREATE TRIGGER local_job_names_update AFTER UPDATE OF name ON local_jobs BEGIN
    INSERT INTO local_job_names (local_job_names, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO local_job_names (rowid, name) VALUES (new.id, new.name);
END;

-- SageMaker jobs are keyed by name and their rowids are not stable (VACUUM
-- may renumber them), so this index keeps its own copy of each name.
CREATE VIRTUAL TABLE sagemaker_training_job_names USING fts5(name, tokenize = 'trigram case_sensitive 0');
INSERT INTO sagemaker_training_job_names (name) SELECT name FROM sagemaker_training_jobs;

CREATE TRIGGER sagemaker_training_job_names_insert AFTER INSERT ON sagemaker_training_jobs BEGIN
    INSERT INTO sagemaker_training_job_names (name) VALUES (new.name);
END;
CREATE TRIGGER sagemaker_training_job_names_delete AFTER DELETE ON sagemaker_training_jobs BEGIN
    DELETE FROM sagemaker_training_job_names WHERE name = old.name;
END;
CREATE TRIGGER sagemaker_training_job_names_update AFTER UPDATE OF name ON sagemaker_training_jobs BEGIN
    DELETE FROM sagemaker_training_job_names WHERE name = old.name;
    INSERT INTO sagemaker_training_job_names (name) VALUES (new.name);
END;
