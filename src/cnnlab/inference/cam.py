"""Grad-CAM (Selvaraju et al. 2017): where in the picture a classifier looked for a class.

The gradients of the class score with respect to a convolutional layer's maps, averaged over
each map, weigh the maps; their weighted sum, through a ReLU, is the class activation map,
resized to the picture. Captum's ``LayerGradCam`` computes it (chosen over the grad-cam
package, which pulls in the plain OpenCV wheel that would replace the contrib build cnnlab's
Haar cascades and Selective Search need; docs/emotion.md and NOTES say more).
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import cam_layer_of


def cam_layer(net: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """The layer ``name`` of ``net`` (None: the family's ``cam_layer``), named for errors."""
    name = name or cam_layer_of(net)
    try:
        return name, net.get_submodule(name)
    except AttributeError:
        convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)][-3:]
        raise UserError(
            f"predict.cam_layer={name}: {type(net).__name__} has no layer of that name; names "
            f"are those of cnnlab-summary's Layer column (the last convolutions: "
            f"{', '.join(convs)})."
        ) from None


def grad_cam(net: nn.Module, x: torch.Tensor, target: int, layer: nn.Module) -> torch.Tensor:
    """The Grad-CAM of class ``target`` for one input ``x`` (1, C, H, W): (H, W) in [0, 1]."""
    from captum.attr import LayerAttribution, LayerGradCam

    def scores(inputs: torch.Tensor) -> torch.Tensor:
        out = net(inputs)
        return out[0] if isinstance(out, tuple | list) else out

    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        cam = LayerGradCam(scores, layer).attribute(x, target=target, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), "bilinear")[0, 0]
    cam = cam.clamp(min=0)
    top = float(cam.max())
    return cam / top if top > 0 else cam
