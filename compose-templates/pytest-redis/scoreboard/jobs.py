"""A reliable FIFO job queue: jobs move to a processing list until acknowledged."""
import json
import uuid


class Queue:
    def __init__(self, client, name):
        self.client = client
        self.pending = f"queue:{name}:pending"
        self.processing = f"queue:{name}:processing"

    def put(self, payload):
        job = {"id": uuid.uuid4().hex, "payload": payload}
        self.client.lpush(self.pending, json.dumps(job, sort_keys=True))
        return job["id"]

    def take(self, timeout=0):
        """Move the oldest job to processing and return it (None when empty / timed out)."""
        if timeout:
            raw = self.client.blmove(self.pending, self.processing, timeout, "RIGHT", "LEFT")
        else:
            raw = self.client.lmove(self.pending, self.processing, "RIGHT", "LEFT")
        return None if raw is None else json.loads(raw)

    def ack(self, job):
        return self.client.lrem(self.processing, 1, json.dumps(job, sort_keys=True)) == 1

    def requeue_stale(self):
        """Put every unacknowledged job back at the head of the queue; returns how many."""
        moved = 0
        while self.client.lmove(self.processing, self.pending, "LEFT", "RIGHT") is not None:
            moved += 1
        return moved

    def __len__(self):
        return self.client.llen(self.pending)

    def in_flight(self):
        return self.client.llen(self.processing)
