"""The primitive registry: importing this package registers every primitive once."""
# registration side effects
from . import elementwise, structural, gather_dot_control, custom, special, linalg, shape_functions  # noqa: F401
from . import ufuncs  # noqa: F401  (issue 15: NumPy's other ufuncs)
from ..core import REGISTRY

__all__ = ["REGISTRY"]
