"""A FIFO job queue in Redis: producers push JSON jobs, the worker pops them."""

import json
import uuid

QUEUE = "ledger:jobs"


def enqueue(client, kind, **payload):
    """Pushes a job and returns its id."""
    job_id = str(uuid.uuid4())
    client.rpush(QUEUE, json.dumps({"id": job_id, "kind": kind, "payload": payload}))
    return job_id


def dequeue(client, timeout=1):
    """Pops the oldest job, or returns None after `timeout` seconds."""
    item = client.blpop([QUEUE], timeout=timeout)
    return None if item is None else json.loads(item[1])


def pending(client):
    """How many jobs wait in the queue."""
    return client.llen(QUEUE)
