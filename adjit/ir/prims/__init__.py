"""The primitive registry: importing this package registers every primitive once."""
# registration side effects
from . import elementwise, structural, misc, custom, special, linalg, shape_functions  # noqa: F401
from ..core import REGISTRY

__all__ = ["REGISTRY"]
