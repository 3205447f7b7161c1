"""Model families, one file each; importing this package fills the registry."""

from cnnlab.models import (  # noqa: F401  (importing a family registers its builders)
    alexnet,
    googlenet,
    lenet,
    resnet,
    resnet_cifar,
    vgg,
)
from cnnlab.models.registry import get_model, list_models, register_model, torchvision_archs

__all__ = ["get_model", "list_models", "register_model", "torchvision_archs"]
