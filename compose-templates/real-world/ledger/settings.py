"""Settings read from the environment. LEDGER_DSN and LEDGER_RUNTIME_DIR are exported by
the image's entrypoint (docker/entrypoint.sh), not by the compose file."""

import os


class MissingSetting(RuntimeError):
    """A variable the entrypoint should have exported is absent."""


def _required(name):
    value = os.environ.get(name)
    if not value:
        raise MissingSetting(
            f"{name} is not set: it is exported by the image entrypoint "
            "(ledger-entrypoint); run the command through it"
        )
    return value


def dsn():
    """The PostgreSQL connection string."""
    return _required("LEDGER_DSN")


def runtime_dir():
    """The folder where the entrypoint wrote bootstrap.json."""
    return _required("LEDGER_RUNTIME_DIR")


def broker_url():
    """The Redis URL of the job queue (set by the compose file)."""
    return _required("BROKER_URL")
