"""Arithmetic units as Keras layers."""

from nalu_keras.layers.base import ArithmeticUnit
from nalu_keras.layers.nac import NAC, MulNAC
from nalu_keras.layers.nalu import NALU

__all__ = ["ArithmeticUnit", "NAC", "MulNAC", "NALU"]
