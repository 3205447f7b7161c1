"""Model families, one file each; importing this package fills the registry."""

from cnnlab.models import lenet, resnet  # noqa: F401  (registers the builders)
from cnnlab.models.registry import get_model, list_models, register_model

__all__ = ["get_model", "list_models", "register_model"]
