"""The textbook layers as functions, named and called like torch.nn.functional's."""

from cnnlab.nn.batchnorm import batch_norm
from cnnlab.nn.conv import conv2d, conv_output_size
from cnnlab.nn.pooling import avg_pool2d, max_pool2d

__all__ = ["avg_pool2d", "batch_norm", "conv2d", "conv_output_size", "max_pool2d"]
