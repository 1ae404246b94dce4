"""A branch on a traced value: the trace records a guard where the comparison was read.

    adjit dump examples/guarded.py:clipped_norm --args "f64[5]" --stage traced
"""
import numpy as np


def clipped_norm(x):
    n = np.sqrt(np.sum(x * x))
    if n > 1.0:  # recorded as `guard c == true` (or false) at this line
        return x / n
    return x
