"""The primitive registry: importing this package registers every primitive once."""
from . import elementwise, structural, misc, custom, special, linalg  # noqa: F401  (registration side effects)
from ..core import REGISTRY

__all__ = ["REGISTRY"]
