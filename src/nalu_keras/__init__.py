"""nalu-keras: neural arithmetic units as Keras 3 layers.

Importing `nalu_keras` selects the JAX backend unless a backend is already
configured (see `nalu_keras._backend`).
"""

from nalu_keras._backend import choose_backend as _choose_backend

_choose_backend()

from nalu_keras.cells import ArithmeticCell, NACCell, NALUCell  # noqa: E402
from nalu_keras.layers import NAC, NALU, ArithmeticUnit, MulNAC  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ArithmeticCell",
    "ArithmeticUnit",
    "MulNAC",
    "NAC",
    "NACCell",
    "NALU",
    "NALUCell",
    "__version__",
]
