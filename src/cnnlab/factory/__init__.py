"""Config -> objects: the one caller of ``hydra.utils.instantiate``, pretrained weights, and the
one way to restore a run from a checkpoint (``cnnlab.factory.restore``).

Library code elsewhere takes built objects and plain arguments; the command-line entry points
compose a config and hand it here.
"""
