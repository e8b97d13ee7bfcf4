import os
import sys

# Make the helpers in this folder importable (backend_harness) and pin the
# default backend before Keras is imported by any test module.
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
