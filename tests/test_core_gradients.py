"""Backend gradients of the core units agree with central finite differences.

Everything runs in float64: the layers are built with dtype="float64" inside
`jax.enable_x64(True)` (JAX truncates to float32 otherwise), the gradient is
`jax.grad` of a scalar function of the weights through `layer.stateless_call`,
and the reference is a central difference of the same function, so any wrong
derivative in the ops (tanh, sigmoid, abs, log, exp, the clamp and exp clip,
the "double where" of the gate mix) shows up as a mismatch.

Weights are moderate random values and inputs lie in ±[0.5, 2], away from the
kink of |x| at 0 and from the clamp threshold ε.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nalu_keras import NAC, NALU, MulNAC

IN_DIM, UNITS, BATCH = 3, 2, 5
STEP = 1e-6  # central difference step (float64)
RTOL, ATOL = 1e-6, 1e-8


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

    return jax.jit(loss)


def _finite_differences(loss, weights):
    """Central differences of `loss` w.r.t. every entry of every weight."""
    grads = []
    for index, w in enumerate(weights):
        flat = np.asarray(w).ravel()
        g = np.zeros_like(flat)
        for k in range(flat.size):
            plus = [np.asarray(v) for v in weights]
            minus = [np.asarray(v).copy() for v in weights]
            plus[index] = plus[index].copy()
            plus[index].ravel()[k] += STEP
            minus[index].ravel()[k] -= STEP
            g[k] = (float(loss(plus)) - float(loss(minus))) / (2 * STEP)
        grads.append(g.reshape(np.shape(w)))
    return grads


def _check_gradients(layer, seed, signed=True, weight_scale=0.7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, size=(BATCH, IN_DIM))
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=x.shape)
    layer.build((None, IN_DIM))
    for v in layer.trainable_variables:
        assert v.dtype == "float64", v.path
        v.assign(rng.normal(0.0, weight_scale, size=v.shape))
    probe = rng.normal(size=(BATCH, UNITS))
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
        np.testing.assert_allclose(a, n, rtol=RTOL, atol=ATOL, err_msg=var.path)
    return layer


def test_nac_gradients():
    layer = _check_gradients(NAC(UNITS, dtype="float64"), seed=0)
    assert [v.name for v in layer.trainable_variables] == ["w_hat", "m_hat"]


@pytest.mark.parametrize("log_mode", ["add", "clamp"])
def test_mulnac_gradients(log_mode):
    _check_gradients(MulNAC(UNITS, log_mode=log_mode, dtype="float64"), seed=1)


def test_mulnac_gradients_with_active_exp_clip():
    """Where the exponent is clipped the output is constant: gradient 0."""
    layer = MulNAC(UNITS, exp_clip=0.05, dtype="float64")
    # seed chosen freely; the assertion below checks that the clip is active
    # for some but not all entries, so both branches are differentiated.
    layer = _check_gradients(layer, seed=2)
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 2.0, size=(BATCH, IN_DIM))
    x = x * rng.choice([-1.0, 1.0], size=x.shape)
    z = np.log(np.abs(x) + 1e-7) @ layer.effective_weights()["W"]
    clipped = z > 0.05
    assert clipped.any() and not clipped.all()
    assert np.all(np.abs(z - 0.05) > 10 * STEP)  # away from the kink


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
    """d/dŴ sum(x @ W) = Σ_batch x_i · (1 - tanh²Ŵ) · σ(M̂), checked exactly."""
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
    np.testing.assert_allclose(g_w, colsum * (1 - np.tanh(w_hat) ** 2) * sig, rtol=1e-12)
    np.testing.assert_allclose(g_m, colsum * np.tanh(w_hat) * sig * (1 - sig), rtol=1e-12)
