import pytest

from ledger import accounts, jobs, worker


@pytest.mark.isolation
def test_queue_is_fifo_and_counted(broker):
    first = jobs.enqueue(broker, "transfer", source=1, target=2, amount_cents=1)
    second = jobs.enqueue(broker, "transfer", source=2, target=1, amount_cents=1)
    assert jobs.pending(broker) == 2
    assert jobs.dequeue(broker)["id"] == first
    assert jobs.dequeue(broker)["id"] == second
    assert jobs.pending(broker) == 0


def test_dequeue_times_out_on_empty_queue(broker):
    assert jobs.dequeue(broker, timeout=1) is None


def test_worker_applies_a_queued_transfer(conn, broker):
    a = accounts.open_account(conn, "a", "EUR")
    b = accounts.open_account(conn, "b", "EUR")
    accounts.post(conn, a, 900)
    jobs.enqueue(broker, "transfer", source=a, target=b, amount_cents=400)
    line = worker.process_one(conn, broker)
    assert line.endswith(f"moved 400 from {a} to {b}")
    assert accounts.balance(conn, b) == 400


def test_worker_rejects_unknown_jobs(conn, broker):
    jobs.enqueue(broker, "refund", amount_cents=1)
    with pytest.raises(accounts.LedgerError, match="unknown job kind"):
        worker.process_one(conn, broker)


def test_worker_idles_on_empty_queue(conn, broker):
    assert worker.process_one(conn, broker, timeout=1) is None
