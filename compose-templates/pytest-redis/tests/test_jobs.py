import time

import pytest

from scoreboard.jobs import Queue


@pytest.fixture
def q(r):
    return Queue(r, "mail")


def test_empty_take_returns_none(q):
    assert q.take() is None


def test_fifo(q):
    for n in range(3):
        q.put({"n": n})
    assert [q.take()["payload"]["n"] for _ in range(3)] == [0, 1, 2]


def test_put_returns_unique_ids(q):
    assert len({q.put({}) for _ in range(20)}) == 20


def test_take_moves_to_processing(q):
    q.put({"to": "a@example.com"})
    q.take()
    assert (len(q), q.in_flight()) == (0, 1)


def test_ack_removes(q):
    q.put({"x": 1})
    job = q.take()
    assert q.ack(job) is True
    assert q.in_flight() == 0


def test_ack_twice(q):
    q.put({"x": 1})
    job = q.take()
    q.ack(job)
    assert q.ack(job) is False


def test_requeue_stale_puts_jobs_back_first(q):
    for n in range(3):
        q.put({"n": n})
    q.take()
    q.take()
    assert q.requeue_stale() == 2
    assert [q.take()["payload"]["n"] for _ in range(3)] == [0, 1, 2]


def test_blocking_take_times_out(q):
    start = time.monotonic()
    assert q.take(timeout=0.3) is None
    assert time.monotonic() - start >= 0.25


def test_blocking_take_gets_job(q, r):
    q.put({"ready": True})
    assert q.take(timeout=1)["payload"] == {"ready": True}


def test_queues_are_separate(r):
    Queue(r, "a").put({})
    assert len(Queue(r, "b")) == 0


def test_payload_roundtrip_keeps_types(q):
    payload = {"to": ["a@example.com", "b@example.com"], "retries": 3, "urgent": False, "meta": None}
    q.put(payload)
    assert q.take()["payload"] == payload


def test_ack_unknown_job(q):
    assert q.ack({"id": "nope", "payload": {}}) is False
