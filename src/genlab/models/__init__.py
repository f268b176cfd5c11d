"""Model families, one file each; importing this package registers every module's models in
``MODELS`` (a new family is a new file here, nothing else to edit)."""

import importlib
import pkgutil

from genlab.models.base import GenerativeModel, build_model

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["GenerativeModel", "build_model"]
