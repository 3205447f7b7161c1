"""Layers written from the textbook formulas (convolution, pooling, batch normalisation).

Each one computes what its torch counterpart computes and has the same parameter and buffer
names, so either can replace the other; the tests hold them against torch's.
"""

from cnnlab.nn import functional
from cnnlab.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormBase
from cnnlab.nn.batchnorm_function import BatchNormFunction
from cnnlab.nn.layers import AvgPool2d, Conv2d, MaxPool2d
from cnnlab.nn.roi_pool import RoIPool, roi_pool

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormBase",
    "BatchNormFunction",
    "Conv2d",
    "MaxPool2d",
    "RoIPool",
    "functional",
    "roi_pool",
]
