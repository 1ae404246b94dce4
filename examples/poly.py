"""A cubic in one variable: `adjit dump examples/poly.py:poly --args "f64[]" --grad`."""


def poly(x):
    return x**3 + 2 * x**2 - 5 * x + 1
