"""Optimisation: the textbook update rules, parameter groups and learning-rate schedules.

``from cnnlab.optim import SGD, Momentum, AdaGrad, RMSProp, Adam, Adadelta`` gives the lecture's
update rules as ``torch.optim.Optimizer`` classes (``rules/``, one file per rule or family).
``param_groups`` splits a model's parameters for weight decay, ``schedules`` builds the
learning-rate multipliers, and ``testfunctions`` and ``trajectory`` run the rules on 2-D
functions for ``cnnlab-optviz``.
"""

from cnnlab.optim.rules import SGD, Adadelta, AdaGrad, Adam, Momentum, RMSProp

__all__ = ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam", "Adadelta"]
