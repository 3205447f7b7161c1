"""The lecture's update rules as ``torch.optim.Optimizer`` classes.

Each has a readable per-tensor loop (``foreach=False``, the reference) and a multi-tensor path
(the default) that tests hold against it and against the torch.optim twin.
"""

from cnnlab.optim.rules.adadelta import Adadelta
from cnnlab.optim.rules.adagrad import AdaGrad
from cnnlab.optim.rules.adam import Adam
from cnnlab.optim.rules.rmsprop import RMSProp
from cnnlab.optim.rules.sgd import SGD, Momentum

__all__ = ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam", "Adadelta"]
