"""Choosing the Keras backend before Keras is imported.

nalu-keras runs on the JAX, TensorFlow and PyTorch backends and uses JAX by
default, because it is by far the fastest for these small models on a CPU.
The rule, applied once when `nalu_keras` is imported:

1. If the environment variable `KERAS_BACKEND` is set, it is used as is
   (this is how to choose TensorFlow or PyTorch: `KERAS_BACKEND=torch`).
2. Otherwise JAX is used. Keras' own default would be TensorFlow, an optional
   dependency here. The `backend` field of `~/.keras/keras.json` is not
   consulted: Keras writes "tensorflow" there on its first import, so it does
   not tell a deliberate choice from a default.

If Keras was imported before `nalu_keras`, its backend is already fixed and
nothing is changed.
"""

from __future__ import annotations

import os
import sys

DEFAULT_BACKEND = "jax"


def choose_backend():
    """Apply the rule above; return the backend name that will be used."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    return os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)
