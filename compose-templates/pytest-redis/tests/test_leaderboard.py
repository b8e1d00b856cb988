import pytest

from scoreboard.leaderboard import Leaderboard


@pytest.fixture
def board(r):
    return Leaderboard(r, "weekly")


def test_empty_board(board):
    assert board.top(3) == [] and board.size() == 0


def test_submit_new_player(board):
    assert board.submit("ann", 10) is True
    assert board.score("ann") == 10


def test_submit_keeps_best_score(board):
    board.submit("ann", 10)
    assert board.submit("ann", 5) is False
    assert board.score("ann") == 10


def test_submit_improves(board):
    board.submit("ann", 10)
    assert board.submit("ann", 12) is True
    assert board.score("ann") == 12


def test_submit_rejects_negative(board):
    with pytest.raises(ValueError):
        board.submit("ann", -1)


def test_add_accumulates(board):
    board.add("bob", 3)
    board.add("bob", 4)
    assert board.score("bob") == 7


def test_top_is_descending(board):
    for player, score in [("a", 1), ("b", 5), ("c", 3)]:
        board.submit(player, score)
    assert board.top(2) == [("b", 5), ("c", 3)]


def test_top_more_than_size(board):
    board.submit("solo", 1)
    assert board.top(10) == [("solo", 1)]


@pytest.mark.parametrize("player,expected", [("b", 1), ("c", 2), ("a", 3), ("zed", None)])
def test_rank(board, player, expected):
    for p, s in [("a", 1), ("b", 5), ("c", 3)]:
        board.submit(p, s)
    assert board.rank(player) == expected


def test_around_middle(board):
    for i, p in enumerate("abcde"):
        board.submit(p, i)
    assert board.around("c") == ["d", "c", "b"]


def test_around_top_edge(board):
    for i, p in enumerate("abc"):
        board.submit(p, i)
    assert board.around("c", radius=2) == ["c", "b", "a"]


def test_around_unknown(board):
    assert board.around("nobody") == []


def test_remove(board):
    board.submit("ann", 1)
    assert board.remove("ann") is True
    assert board.remove("ann") is False
    assert board.score("ann") is None


def test_boards_are_separate(r):
    Leaderboard(r, "a").submit("x", 1)
    assert Leaderboard(r, "b").size() == 0


def test_add_creates_player(board):
    assert board.add("new", 2) == 2.0
    assert board.rank("new") == 1


def test_ties_rank_by_name_descending(board):
    board.submit("amy", 5)
    board.submit("zoe", 5)
    assert board.top(2) == [("zoe", 5), ("amy", 5)]
