import pytest

from ledger import bootstrap, settings


def test_wait_for_retries_until_connect_succeeds():
    attempts = iter([OSError("refused"), OSError("refused"), "conn"])

    def connect():
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    now = [0.0]
    result = bootstrap.wait_for(connect, timeout=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert result == ("conn", 2)


def test_wait_for_gives_up_after_timeout():
    now = [0.0]

    def connect():
        raise OSError("refused")

    with pytest.raises(OSError):
        bootstrap.wait_for(connect, timeout=1, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] >= 1


def test_missing_setting_names_the_entrypoint(monkeypatch):
    monkeypatch.delenv("LEDGER_RUNTIME_DIR", raising=False)
    with pytest.raises(settings.MissingSetting, match="ledger-entrypoint"):
        settings.runtime_dir()
