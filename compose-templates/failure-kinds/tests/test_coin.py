import os
import random


def test_coin_lands_heads():
    # Deterministic for a given seed and run: see COIN_SEED in docker-compose.yml.
    toss = random.Random("%s/%s" % (os.environ.get("COIN_SEED", "4"), os.environ.get("COMPOSE_SHARD_ATTEMPT", "0")))
    assert toss.random() >= 0.5, "the coin landed tails"


def test_coin_has_two_sides():
    assert len({"heads", "tails"}) == 2
