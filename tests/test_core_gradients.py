"""Backend gradients of the core units agree with central finite differences.

Everything runs in float64: the layers are built with dtype="float64" inside
`jax.enable_x64(True)` (JAX truncates to float32 otherwise), the gradient is
`jax.grad` of a scalar function of the weights through `layer.stateless_call`,
and the reference is a central difference of the same function, so any wrong
derivative in the ops (tanh, sigmoid, abs, log, exp, the clamp and exp clip,
the "double where" of the gate mix) shows up as a mismatch.

Weights are moderate random values and inputs lie in ±[0.5, 2], away from the
kink of |x| at 0 and from the clamp threshold ε.

One Keras detail sets the tolerances: on the JAX backend `keras.ops.tanh`
computes in float32 even for float64 inputs (Keras' `result_type` maps
float64 to float32 on non-TensorFlow backends), so the loss is only
float32-accurate as a function of the tanh-parametrized weights `w_hat` and
`w_hat_mul`. A fourth-order difference stencil with a large step keeps the
truncation error negligible (~h^4) and the rounding noise around 1e-5; the
other weights are checked to ~1e-7.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nalu_keras import NAC, NALU, MulNAC

IN_DIM, UNITS, BATCH = 3, 2, 5
STEP = 1e-2  # step of the fourth-order stencil (truncation error ~ STEP**4)
TANH_WEIGHTS = ("w_hat", "w_hat_mul")  # see the module docstring


@pytest.fixture(autouse=True)
def _x64():
    """Enable float64 in JAX for the duration of each test only."""
    with jax.enable_x64(True):
        yield


def _loss_fn(layer, x, probe):
    """A scalar that depends on every output: sum(layer(x) * probe)."""
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(trainable):
        out, _ = layer.stateless_call(trainable, non_trainable, x)
        return jnp.sum(out * probe)

    return loss


def _finite_differences(loss, weights):
    """Fourth-order central differences of `loss` w.r.t. every weight entry.

    f'(w) ~ (-f(w+2h) + 8 f(w+h) - 8 f(w-h) + f(w-2h)) / (12 h).
    All perturbed weight sets are evaluated in one vectorized call.
    """
    shapes = [np.shape(w) for w in weights]
    sizes = [int(np.prod(shape)) for shape in shapes]
    theta = np.concatenate([np.asarray(w).ravel() for w in weights])

    def unflatten(flat):
        parts = jnp.split(flat, np.cumsum(sizes)[:-1])
        return [p.reshape(shape) for p, shape in zip(parts, shapes)]

    batched = jax.jit(jax.vmap(lambda flat: loss(unflatten(flat))))
    eye = np.eye(theta.size)
    stencil = ((2, -1.0), (1, 8.0), (-1, -8.0), (-2, 1.0))
    total = np.zeros(theta.size)
    for shift, coeff in stencil:
        total += coeff * np.asarray(batched(theta + shift * STEP * eye))
    numeric = total / (12 * STEP)
    return [np.asarray(p) for p in unflatten(numeric)]


def _tolerances(var):
    if var.name in TANH_WEIGHTS:
        return dict(rtol=1e-4, atol=1e-6)
    return dict(rtol=1e-7, atol=1e-9)


def _draw(seed, layer, signed=True, weight_scale=0.7):
    """Build `layer` and draw its weights, inputs and an output probe."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, size=(BATCH, IN_DIM))
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=x.shape)
    layer.build((None, IN_DIM))
    for v in layer.trainable_variables:
        assert v.dtype == "float64", v.path
        v.assign(rng.normal(0.0, weight_scale, size=v.shape))
    probe = rng.normal(size=(BATCH, UNITS))
    return x, probe


def _check_gradients(layer, seed, signed=True):
    x, probe = _draw(seed, layer, signed=signed)
    loss = _loss_fn(layer, x, probe)
    weights = [v.value for v in layer.trainable_variables]
    assert all(w.dtype == jnp.float64 for w in weights)

    analytic = jax.grad(loss)(weights)
    numeric = _finite_differences(loss, weights)
    for var, a, n in zip(layer.trainable_variables, analytic, numeric):
        a = np.asarray(a)
        assert np.all(np.isfinite(a)), var.path
        # a zero gradient would pass trivially: each weight must matter
        assert np.max(np.abs(n)) > 1e-4, var.path
        np.testing.assert_allclose(a, n, err_msg=var.path, **_tolerances(var))
    return layer


def test_nac_gradients():
    layer = _check_gradients(NAC(UNITS, dtype="float64"), seed=0)
    assert [v.name for v in layer.trainable_variables] == ["w_hat", "m_hat"]


@pytest.mark.parametrize("log_mode", ["add", "clamp"])
def test_mulnac_gradients(log_mode):
    _check_gradients(MulNAC(UNITS, log_mode=log_mode, dtype="float64"), seed=1)


def test_mulnac_gradients_with_active_exp_clip():
    """Where the exponent is clipped the output is constant: gradient 0."""
    # Find the exponents for these weights and inputs, then put ω in the
    # widest gap between them: some entries are clipped, some are not, and
    # none is within reach of the difference stencil.
    probe_layer = MulNAC(UNITS, dtype="float64")
    x, _ = _draw(2, probe_layer)  # the same draws as _check_gradients(seed=2)
    z = (np.log(np.abs(x) + 1e-7) @ probe_layer.effective_weights()["W"]).ravel()
    z = np.sort(z[z > 0])  # exp_clip must be positive
    gaps = np.diff(z)
    k = int(np.argmax(gaps[:-1]))  # at least two entries above ω
    omega = float(z[k] + z[k + 1]) / 2
    assert gaps[k] > 0.05

    layer = _check_gradients(MulNAC(UNITS, exp_clip=omega, dtype="float64"), seed=2)
    out = np.asarray(layer(x))
    clipped = np.isclose(out, np.exp(omega), rtol=1e-12)
    assert clipped.any() and not clipped.all()


GATE_OPTIONS = [
    dict(gate="input"),
    dict(gate="abs_input"),
    dict(gate="independent"),
    dict(gate="input", gate_bias=True),
    dict(gate="abs_input", gate_bias=True),
]


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
@pytest.mark.parametrize(
    "options", GATE_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
)
def test_nalu_gradients(options, shared):
    layer = NALU(UNITS, shared_weights=shared, dtype="float64", **options)
    layer = _check_gradients(layer, seed=3)
    names = {v.name for v in layer.trainable_variables}
    expected = {"w_hat", "m_hat", "g"}
    if not shared:
        expected |= {"w_hat_mul", "m_hat_mul"}
    if options.get("gate_bias"):
        expected |= {"g_bias"}
    assert names == expected


@pytest.mark.parametrize("log_mode", ["add", "clamp"])
def test_nalu_gradients_log_mode_and_exp_clip(log_mode):
    layer = NALU(
        UNITS, log_mode=log_mode, exp_clip=50.0, shared_weights=False, dtype="float64"
    )
    _check_gradients(layer, seed=4)


def test_nalu_gradients_positive_inputs_gate_input():
    """The paper's configuration on the positive inputs it was trained on."""
    _check_gradients(NALU(UNITS, dtype="float64"), seed=5, signed=False)


def test_gradient_matches_closed_form_for_nac():
    """d/dŴ sum(x @ W) = Σ_batch x_i · (1 - tanh²Ŵ) · σ(M̂), in closed form."""
    rng = np.random.default_rng(6)
    layer = NAC(UNITS, dtype="float64")
    layer.build((None, IN_DIM))
    w_hat = rng.normal(size=(IN_DIM, UNITS))
    m_hat = rng.normal(size=(IN_DIM, UNITS))
    layer.set_weights([w_hat, m_hat])
    x = rng.uniform(0.5, 2.0, size=(BATCH, IN_DIM))
    loss = _loss_fn(layer, x, np.ones((BATCH, UNITS)))
    g_w, g_m = jax.grad(loss)([v.value for v in layer.trainable_variables])
    colsum = x.sum(axis=0)[:, None]
    sig = 1.0 / (1.0 + np.exp(-m_hat))
    # rtol 1e-5: keras.ops.tanh is float32 on JAX (see module docstring)
    np.testing.assert_allclose(g_w, colsum * (1 - np.tanh(w_hat) ** 2) * sig, rtol=1e-5)
    np.testing.assert_allclose(g_m, colsum * np.tanh(w_hat) * sig * (1 - sig), rtol=1e-5)
