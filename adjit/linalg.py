"""`torch.linalg` for adjit Tensors (`import adjit as torch; torch.linalg.solve(A, B)`)."""
from .tracer.torch_linalg import (solve, inv, det, slogdet, cholesky, eigh,  # noqa: F401
                                  eigvalsh, svd, svdvals, norm, matrix_norm, vector_norm,
                                  pinv, lstsq, qr)
from .tracer.tensor_shape_functions import linalg_cross as cross  # noqa: F401,E402
