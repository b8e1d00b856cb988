"""A leaderboard and a job queue on Redis."""
import os

import redis


def connect(url=None):
    return redis.Redis.from_url(url or os.environ.get("REDIS_URL", "redis://localhost:6379/0"), decode_responses=True)
