"""LeNet-5 (LeCun et al. 1998) in its common modern form.

ReLU instead of scaled tanh, max pooling instead of trainable subsampling, and every C3 map
connected to all six S2 maps. Input 32x32; 61,706 parameters for one channel and ten classes.
"""

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models.parts import conv_stages
from cnnlab.models.registry import register_model

TASK = "classification"
ZOO_POSITION = 1  # where the family's rows go in the model table (cnnlab.summary.model_zoo)


class LeNet5(nn.Module):
    head_names = ("classifier",)  # C5, F6 and the output layer
    cam_layer = "features.3"  # C3, the last convolution: Grad-CAM's maps (10x10 at 32)

    input_size = 32

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: (B, 6, 28, 28)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: (B, 16, 10, 10)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # S4: (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),  # C5, a full connection over the 5x5 maps
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),  # F6
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def finetune_stages(self) -> list[list[nn.Module]]:
        """C1-S2 and C3-S4: ``finetune.trainable_layers=N`` trains the last N of them."""
        return conv_stages(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise UserError(
                f"LeNet-5 takes {self.input_size}x{self.input_size} images, got "
                f"{x.shape[-2]}x{x.shape[-1]}. Set data.image_size={self.input_size}."
            )
        return self.classifier(self.features(x))


@register_model("lenet")
def lenet(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels)
