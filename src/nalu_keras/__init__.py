"""nalu-keras: neural arithmetic units as Keras 3 layers.

Importing `nalu_keras` selects the JAX backend unless a backend is already
configured (see `nalu_keras._backend`).
"""

from nalu_keras._backend import choose_backend as _choose_backend

_choose_backend()

# The imports below register every layer, cell, regularizer, constraint and
# initializer with Keras' serialization, so saved models load without
# `custom_objects` once `nalu_keras` is imported.
from nalu_keras import callbacks, constraints, regularizers, training_aids  # noqa: E402
from nalu_keras.cells import ArithmeticCell, NACCell, NALUCell  # noqa: E402
from nalu_keras.layers import (  # noqa: E402
    GNALU,
    NAC,
    NALU,
    NAU,
    NMU,
    NPU,
    ArithmeticUnit,
    BoundedMulNAC,
    GatedNAUNMU,
    MulNAC,
    NaiveNPU,
    RealNaiveNPU,
    RealNPU,
    SigmoidMulNAC,
    iNALU,
)
from nalu_keras.metrics import sparsity_error  # noqa: E402
from nalu_keras.registry import available_units, get_unit  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ArithmeticCell",
    "ArithmeticUnit",
    "GNALU",
    "GatedNAUNMU",
    "MulNAC",
    "NAC",
    "NACCell",
    "NALU",
    "NALUCell",
    "NAU",
    "NMU",
    "NPU",
    "NaiveNPU",
    "RealNPU",
    "RealNaiveNPU",
    "SigmoidMulNAC",
    "BoundedMulNAC",
    "__version__",
    "available_units",
    "callbacks",
    "constraints",
    "get_unit",
    "iNALU",
    "regularizers",
    "sparsity_error",
    "training_aids",
]
