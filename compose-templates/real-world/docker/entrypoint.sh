#!/bin/sh
# Prepares the container before the real command runs, as entrypoints of real images do:
#   - exports LEDGER_DSN (built from DB_*) and LEDGER_RUNTIME_DIR, which the code reads;
#   - waits until PostgreSQL accepts connections, creates the schema and writes
#     $LEDGER_RUNTIME_DIR/bootstrap.json (python -m ledger.bootstrap);
#   - then replaces itself with the command (`exec "$@"`), so the command is PID 1's
#     program and sees everything prepared here.
# A runner that starts the command without this entrypoint finds none of it.
set -eu
export LEDGER_DSN="postgresql://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:${DB_PORT:-5432}/${DB_NAME}"
export LEDGER_RUNTIME_DIR="${LEDGER_RUNTIME_DIR:-/tmp/ledger-runtime}"
python -m ledger.bootstrap
exec "$@"
