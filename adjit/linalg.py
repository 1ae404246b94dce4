"""`torch.linalg` for adjit Tensors (`import adjit as torch; torch.linalg.solve(A, B)`)."""
from .tracer.torch_linalg import (solve, inv, det, slogdet, cholesky, eigh,  # noqa: F401
                                  eigvalsh)
