"""A tiny double-entry ledger: accounts and entries in PostgreSQL, a job queue in Redis."""
