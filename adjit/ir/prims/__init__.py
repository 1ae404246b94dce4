"""The primitive registry: importing this package registers every primitive once."""
from . import elementwise, structural, misc, custom  # noqa: F401  (registration side effects)
from . import ufuncs  # noqa: F401  (issue 15: NumPy's other ufuncs)
from ..core import REGISTRY

__all__ = ["REGISTRY"]
