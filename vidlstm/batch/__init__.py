"""Batch inference building blocks: file discovery, sharding, decode worker pool, record files, merge."""
