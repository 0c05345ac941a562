-- Run once by the postgres image, on the first start with an empty data volume.
-- One database per store, so each can be backed up, restored or moved on its own.
CREATE DATABASE mlflow;       -- MLflow runs and model registry
CREATE DATABASE predictions;  -- the service's prediction and feedback log
CREATE DATABASE training;     -- optional: a home for training rows (data.source.kind: sql)
