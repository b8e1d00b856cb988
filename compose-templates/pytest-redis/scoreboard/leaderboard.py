"""Game leaderboard on a sorted set."""


class Leaderboard:
    def __init__(self, client, name):
        self.client = client
        self.key = f"board:{name}"

    def submit(self, player, score):
        """Keep a player's best score; returns True when it improved."""
        if score < 0:
            raise ValueError("scores are non-negative")
        return bool(self.client.zadd(self.key, {player: score}, gt=True, ch=True))

    def add(self, player, points):
        return self.client.zincrby(self.key, points, player)

    def top(self, n):
        return [(p, int(s)) for p, s in self.client.zrevrange(self.key, 0, n - 1, withscores=True)]

    def rank(self, player):
        """1-based rank, None when unknown."""
        r = self.client.zrevrank(self.key, player)
        return None if r is None else r + 1

    def score(self, player):
        s = self.client.zscore(self.key, player)
        return None if s is None else int(s)

    def around(self, player, radius=1):
        r = self.client.zrevrank(self.key, player)
        if r is None:
            return []
        start = max(0, r - radius)
        return [p for p in self.client.zrevrange(self.key, start, r + radius)]

    def remove(self, player):
        return bool(self.client.zrem(self.key, player))

    def size(self):
        return self.client.zcard(self.key)
