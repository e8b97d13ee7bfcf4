"""Run built layers on another Keras backend, in a subprocess, and return outputs.

The Keras backend is fixed when Keras is imported, so comparing backends needs
one process per backend. `outputs_on_backend(backend, cases)` serializes each
(layer, inputs) case -- the layer's config and weights, the inputs -- runs this
file as a script under `KERAS_BACKEND=backend`, and returns the outputs. One
subprocess handles all cases, so the backend is imported once.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np
import pytest

BACKEND_MODULES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def backend_available(backend):
    return importlib.util.find_spec(BACKEND_MODULES[backend]) is not None


def require_backend(backend):
    if not backend_available(backend):
        pytest.skip(f"the {backend} backend is not installed")


def outputs_on_backend(backend, cases):
    """Outputs of each built `layer` on `inputs`, computed on `backend`.

    Args:
        backend: "jax", "tensorflow" or "torch".
        cases: list of (layer, inputs) with `layer` built and `inputs` a
            numpy array.

    Returns:
        A list of numpy arrays, one per case.
    """
    import keras

    payload = [
        {
            "config": keras.saving.serialize_keras_object(layer),
            "weights": [np.asarray(w) for w in layer.get_weights()],
            "inputs": np.asarray(inputs),
        }
        for layer, inputs in cases
    ]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "cases.pkl")
        dst = os.path.join(tmp, "outputs.pkl")
        with open(src, "wb") as handle:
            pickle.dump(payload, handle)
        env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        result = subprocess.run(
            [sys.executable, os.path.abspath(__file__), src, dst],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"backend {backend} subprocess failed:\n{result.stderr[-4000:]}"
            )
        with open(dst, "rb") as handle:
            return pickle.load(handle)


def _run(src, dst):
    import keras

    import nalu_keras  # noqa: F401  (registers the serializable classes)

    with open(src, "rb") as handle:
        payload = pickle.load(handle)
    outputs = []
    for case in payload:
        layer = keras.saving.deserialize_keras_object(case["config"])
        if not layer.built:
            layer.build(case["inputs"].shape)
        layer.set_weights(case["weights"])
        outputs.append(keras.ops.convert_to_numpy(layer(case["inputs"])))
    with open(dst, "wb") as handle:
        pickle.dump(outputs, handle)


if __name__ == "__main__":
    _run(sys.argv[1], sys.argv[2])
