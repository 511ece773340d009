"""The single pytest test function; the plugin parametrizes it with every (pair, check)."""


def test_behaviour(case, ctx):
    _pair, chk = case
    chk.fn(ctx)
