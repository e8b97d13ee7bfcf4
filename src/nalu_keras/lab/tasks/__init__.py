"""Data generators for the experiments: pure numpy, seeded, no Keras."""

from nalu_keras.lab.tasks import identity
from nalu_keras.lab.tasks.arithmetic import OPERATIONS, ArithmeticTask, ValueRange

__all__ = ["OPERATIONS", "ArithmeticTask", "ValueRange", "identity"]
