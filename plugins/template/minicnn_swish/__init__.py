"""minicnn-swish: a template layer plugin for minicnn.

``Swish(num_features, beta=1.0, learnable=True)`` computes ``y = x * sigmoid(beta_c * x)`` with one
beta per channel (Ramachandran et al., "Searching for activation functions", 2017; beta = 1 is
SiLU). minicnn finds it through the entry point ``swish`` (group ``minicnn``), which names
:mod:`minicnn_swish.plugin`.
"""

from .swish import Swish, swish

__all__ = ["Swish", "swish"]
__version__ = "0.1.0"
