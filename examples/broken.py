"""A function that fails while it runs: `adjit dump` reports the user's traceback, exit 2."""


def helper(x):
    return x.no_such_method()


def fails(x):
    return helper(x) + 1
