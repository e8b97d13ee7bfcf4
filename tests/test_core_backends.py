"""The same weights give the same outputs on JAX, TensorFlow and PyTorch.

The layers are built and run in this process (JAX, the default backend); the
`backend_harness` re-creates each layer from its config and weights under
another backend in a subprocess. All cases of a backend go to one subprocess,
started once per module (the cache below) and shared by the parametrized
tests, so each case is reported on its own but no backend is imported twice.
"""

import functools

import keras
import numpy as np
import pytest

from backend_harness import outputs_on_backend, require_backend
from nalu_keras import NAC, NALU, MulNAC

pytestmark = [
    pytest.mark.backends,
    # Keras' get_weights() triggers a numpy-2 deprecation notice on JAX arrays
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword"
    ),
]

OTHER_BACKENDS = ["tensorflow", "torch"]
IN_DIM, UNITS = 4, 3
SAT = 30.0


def _random_layer(layer, rng, shape=(8, IN_DIM), scale=0.8):
    """Build `layer` with random moderate weights."""
    layer.build((None,) + tuple(shape[1:]))
    layer.set_weights([rng.normal(0.0, scale, size=w.shape) for w in layer.get_weights()])
    return layer


def _signed_inputs(rng, shape=(8, IN_DIM), low=0.5, high=2.0):
    x = rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return x.astype("float32")


def _exact(layer, pattern, g=None):
    """Saturated weights realizing `pattern` (and the gate weight `g`)."""
    pattern = np.asarray(pattern, dtype="float32")
    layer.build((None, pattern.shape[0]))
    layer.w_hat.assign(np.where(pattern < 0, -SAT, SAT))
    layer.m_hat.assign(np.where(pattern == 0, -SAT, SAT))
    if g is not None:
        layer.g.assign(np.asarray(g, dtype="float32"))
    return layer


PATTERN = [[1, 1, 0], [1, -1, 1], [0, 0, 1], [1, 0, -1]]


def _cases():
    """(name, layer, inputs) for every compared configuration.

    Built on demand (not at import), always from the same seed.
    """
    rng = np.random.default_rng(2024)
    cases = [
        ("nac-random", _random_layer(NAC(UNITS), rng), _signed_inputs(rng)),
        (
            "nac-exact-1e5",
            _exact(NAC(UNITS), PATTERN),
            _signed_inputs(rng, low=1e5, high=2e5),
        ),
        ("nac-rank3", _random_layer(NAC(UNITS), rng, (2, 5, IN_DIM)),
         _signed_inputs(rng, (2, 5, IN_DIM))),
        ("mulnac-random", _random_layer(MulNAC(UNITS), rng), _signed_inputs(rng)),
        (
            "mulnac-clamp-clip",
            _random_layer(MulNAC(UNITS, log_mode="clamp", exp_clip=1.0), rng),
            _signed_inputs(rng, low=0.1, high=10.0),
        ),
        (
            "mulnac-exact-1e4",
            _exact(MulNAC(UNITS), PATTERN),
            _signed_inputs(rng, low=1e4, high=2e4),
        ),
        ("mulnac-zeros", _random_layer(MulNAC(UNITS), rng),
         np.array([[0.0, 1.0, -2.0, 0.5], [0.0, 0.0, 0.0, 0.0]], dtype="float32")),
        ("nalu-default", _random_layer(NALU(UNITS), rng), _signed_inputs(rng)),
        (
            "nalu-separate-absgate-bias",
            _random_layer(
                NALU(UNITS, shared_weights=False, gate="abs_input", gate_bias=True), rng
            ),
            _signed_inputs(rng),
        ),
        (
            "nalu-independent-clamp-clip",
            _random_layer(
                NALU(UNITS, gate="independent", log_mode="clamp", exp_clip=2.0), rng
            ),
            _signed_inputs(rng, low=0.1, high=10.0),
        ),
        (
            "nalu-eps-1e-3-rank4",
            _random_layer(NALU(UNITS, epsilon=1e-3), rng, (2, 2, 3, IN_DIM)),
            _signed_inputs(rng, (2, 2, 3, IN_DIM)),
        ),
        (
            # gate exactly 1 while the multiplicative path overflows to inf:
            # every backend must return the additive path, not NaN.
            "nalu-gate1-overflow",
            _exact(NALU(UNITS), [[1, 1, 1]] * 4, g=np.full((4, 3), 50.0)),
            np.full((2, 4), 1e30, dtype="float32"),
        ),
        (
            "nalu-exact-mixed-1e4",
            _exact(NALU(UNITS), PATTERN, g=np.tile([50.0, -50.0, -50.0], (4, 1))),
            np.abs(_signed_inputs(rng, low=1e4, high=2e4)),
        ),
    ]
    return cases


CASE_NAMES = [
    "nac-random",
    "nac-exact-1e5",
    "nac-rank3",
    "mulnac-random",
    "mulnac-clamp-clip",
    "mulnac-exact-1e4",
    "mulnac-zeros",
    "nalu-default",
    "nalu-separate-absgate-bias",
    "nalu-independent-clamp-clip",
    "nalu-eps-1e-3-rank4",
    "nalu-gate1-overflow",
    "nalu-exact-mixed-1e4",
]


@functools.cache
def _results(backend):
    """(jax outputs, backend outputs) for all cases: one subprocess per backend."""
    cases = _cases()
    assert [name for name, _, _ in cases] == CASE_NAMES
    local = [keras.ops.convert_to_numpy(layer(x)) for _, layer, x in cases]
    remote = outputs_on_backend(backend, [(layer, x) for _, layer, x in cases])
    return local, remote


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_as_jax(backend, name):
    require_backend(backend)
    assert keras.backend.backend() == "jax"
    local, remote = _results(backend)
    index = CASE_NAMES.index(name)
    expected, actual = local[index], np.asarray(remote[index])
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    assert not np.isnan(actual).any() and not np.isnan(expected).any()
    # inf where JAX has inf (none of the cases should have any)
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
    finite = np.isfinite(expected)
    scale = np.max(np.abs(expected[finite])) if finite.any() else 1.0
    np.testing.assert_allclose(
        actual[finite], expected[finite], rtol=2e-5, atol=1e-6 * scale
    )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_gate_one_overflow_is_exact_sum_on_every_backend(backend):
    """The additive result must be exact (4e30) on every backend, not NaN/inf."""
    require_backend(backend)
    _, remote = _results(backend)
    out = np.asarray(remote[CASE_NAMES.index("nalu-gate1-overflow")])
    np.testing.assert_allclose(out, np.full((2, 3), 4e30), rtol=1e-6)
