"""Arithmetic units as Keras layers."""

from nalu_keras.layers.base import ArithmeticUnit
from nalu_keras.layers.bounded_mul import BoundedMulNAC
from nalu_keras.layers.golden import GNALU, SigmoidMulNAC
from nalu_keras.layers.inalu import iNALU
from nalu_keras.layers.nac import NAC, MulNAC
from nalu_keras.layers.nalu import NALU
from nalu_keras.layers.nau_nmu import NAU, NMU, GatedNAUNMU, NAUUniform
from nalu_keras.layers.npu import NPU, NaiveNPU, RealNaiveNPU, RealNPU

__all__ = [
    "ArithmeticUnit",
    "BoundedMulNAC",
    "GNALU",
    "GatedNAUNMU",
    "MulNAC",
    "NAC",
    "NALU",
    "NAU",
    "NAUUniform",
    "NMU",
    "NPU",
    "NaiveNPU",
    "RealNPU",
    "RealNaiveNPU",
    "SigmoidMulNAC",
    "iNALU",
]
