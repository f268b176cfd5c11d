"""Model families, one file each; importing this package registers them in ``MODELS``."""

from genlab.models import gan, vae  # noqa: F401
from genlab.models.base import GenerativeModel, build_model

__all__ = ["GenerativeModel", "build_model"]
