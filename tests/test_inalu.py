"""iNALU: exact values against a numpy evaluation of the paper's formula, the
sign recovery, the gate, the exponent clip, NaN safety, training, saving,
recurrence and the regularizer. (Backend parity for iNALU is in test_npu.py,
which runs one subprocess per backend for all the new units.)
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from nalu_keras.callbacks import LossTriggerSchedule
from nalu_keras.cells import ArithmeticCell
from nalu_keras.layers.inalu import iNALU
from nalu_keras.regularizers import Saturation
from nalu_keras.training_aids import inalu_optimizer

SAT = 30.0  # tanh(30) == 1 and sigmoid(30) == 1 in float32
GATE_ADD, GATE_MUL = 200.0, -200.0  # sigmoid(±200) is exactly 1 / 0 in float32


def raw(pattern):
    pattern = np.asarray(pattern, np.float64)
    return (
        np.where(pattern < 0, -SAT, SAT).astype("float32"),
        np.where(pattern == 0, -SAT, SAT).astype("float32"),
    )


def exact_inalu(w_add, w_mul=None, gate=GATE_MUL, **kwargs):
    w_add = np.asarray(w_add, np.float64)
    layer = iNALU(w_add.shape[1], shared_weights=w_mul is None, **kwargs)
    layer.build((None, w_add.shape[0]))
    layer.w_hat.assign(raw(w_add)[0])
    layer.m_hat.assign(raw(w_add)[1])
    if w_mul is not None:
        layer.w_hat_mul.assign(raw(w_mul)[0])
        layer.m_hat_mul.assign(raw(w_mul)[1])
    layer.g.assign(np.broadcast_to(np.float32(gate), (w_add.shape[1],)))
    return layer


def reference(x, w_a, w_m, g, eps=1e-7, omega=20.0):
    """The iNALU formula in float64 numpy, written from the paper."""
    x = np.asarray(x, np.float64)
    a = x @ w_a
    z = np.log(np.maximum(np.abs(x), eps)) @ w_m
    m = np.exp(z if omega is None else np.minimum(z, omega))
    s = np.clip(np.prod(np.sign(x)[:, :, None] * np.abs(w_m) + 1 - np.abs(w_m), axis=1), -1, 1)
    return g * a + (1 - g) * m * s


def out(layer, x):
    """The layer's output, computed in one compiled JAX call."""
    values = [v.value for v in layer.trainable_variables]
    fixed = [v.value for v in layer.non_trainable_variables]
    y = jax.jit(lambda v, f, x: layer.stateless_call(v, f, x)[0])(
        values, fixed, np.asarray(x, "float32")
    )
    return np.asarray(y)


# -- exact values ------------------------------------------------------------------
W_MUL = np.array([[1, 1, 0], [1, -1, 1], [0, 0, 1], [-1, 0, 1]], np.float64)


def test_sign_recovery_with_negative_inputs_and_zeros():
    x = np.array(
        [
            [-2.0, 3.0, 5.0, 4.0],  # one negative factor: negative product
            [-2.0, -3.0, 5.0, -4.0],  # three negatives in column 0
            [0.0, 3.0, 5.0, 4.0],  # a zero factor: product 0
            [7.0, -0.5, 0.0, 2.0],  # a zero input the column ignores (W = 0)
            [-1e3, 1e3, -1e2, 10.0],
        ]
    )
    layer = exact_inalu(np.zeros((4, 3)), W_MUL, gate=GATE_MUL)
    expected = reference(x, np.zeros((4, 3)), W_MUL, 0.0)
    np.testing.assert_allclose(out(layer, x), expected, rtol=1e-5, atol=1e-6)
    # And by hand, for the first row: x0·x1/x3, x0/x1, x1·x2·x3.
    np.testing.assert_allclose(out(layer, x)[0], [-1.5, -2.0 / 3.0, 60.0], rtol=1e-5)
    assert np.all(out(layer, x)[2, :2] == 0.0)


def test_sign_recovery_factor_with_fractional_weights():
    # |W| = 0.5 and x < 0: the factor is −0.5 + 0.5 = 0; x > 0: 1.
    layer = iNALU(1)
    layer.build((None, 2))
    w_m = keras.ops.convert_to_numpy(layer.W_mul)
    x = np.array([[-3.0, 2.0], [3.0, -2.0], [-1.0, -1.0]])
    g = keras.ops.convert_to_numpy(keras.ops.sigmoid(layer.g))
    w_a = keras.ops.convert_to_numpy(layer.W)
    np.testing.assert_allclose(out(layer, x), reference(x, w_a, w_m, g), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gate, g", [(GATE_ADD, 1.0), (GATE_MUL, 0.0)])
def test_saturated_gate_selects_one_path_exactly(gate, g):
    w_add = np.array([[1, 0, -1], [1, 1, 0], [0, -1, 1], [-1, 1, 1]], np.float64)
    x = np.array([[-2.0, 3.0, 5.0, 4.0], [1e4, -2e4, 3e3, 0.5]])
    layer = exact_inalu(w_add, W_MUL, gate=gate)
    y = out(layer, x)
    np.testing.assert_allclose(y, reference(x, w_add, W_MUL, g), rtol=1e-5, atol=1e-6)
    path = x @ w_add if g == 1.0 else reference(x, w_add, W_MUL, 0.0)
    np.testing.assert_allclose(y, path, rtol=1e-5, atol=1e-6)


def test_shared_weights_use_one_matrix_for_both_paths():
    w = np.array([[1.0], [1.0]])
    x = np.array([[-2.0, 3.0], [4.0, 5.0]])
    layer = exact_inalu(w, None, gate=0.0)  # σ(0) = 1/2
    assert [v.name for v in layer.trainable_weights] == ["w_hat", "m_hat", "g"]
    np.testing.assert_allclose(out(layer, x), reference(x, w, w, 0.5), rtol=1e-5)
    np.testing.assert_allclose(out(layer, x)[:, 0], [0.5 * 1 + 0.5 * -6, 0.5 * 9 + 0.5 * 20])


@pytest.mark.parametrize("omega", [20.0, 5.0])
def test_exponent_is_clipped_at_omega(omega):
    x = np.array([[1e5, 1e5], [-1e5, 1e5], [2.0, 3.0]])
    layer = exact_inalu(np.zeros((2, 1)), np.ones((2, 1)), gate=GATE_MUL, exp_clip=omega)
    y = out(layer, x)[:, 0]
    capped = min(6.0, np.exp(omega))
    np.testing.assert_allclose(y, [np.exp(omega), -np.exp(omega), capped], rtol=1e-5)


def test_log_is_clamped_at_epsilon():
    # log(max(|x|, ε)): |x| below ε counts as ε; at or above ε it is exact.
    layer = exact_inalu(np.zeros((1, 1)), -np.ones((1, 1)), gate=GATE_MUL, epsilon=1e-3)
    np.testing.assert_allclose(out(layer, [[1e-5], [2e-3], [-4.0]])[:, 0], [1e3, 500.0, -0.25], rtol=1e-5)


def test_no_nan_when_the_unused_path_overflows():
    # Without the clip, e^{log(1e30)·2} overflows float32; the gate is exactly 1.
    layer = exact_inalu(np.ones((2, 1)), np.ones((2, 1)), gate=GATE_ADD, exp_clip=None)
    x = np.array([[1e30, 1e30]], "float32")
    np.testing.assert_allclose(out(layer, x), [[2e30]], rtol=1e-5)

    def loss(values):
        y, _ = layer.stateless_call(values, [v.value for v in layer.non_trainable_variables], x)
        return jnp.sum(y)

    grads = jax.jit(jax.grad(loss))([v.value for v in layer.trainable_variables])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


def test_default_initialization_is_the_papers():
    layer = iNALU(64)
    layer.build((None, 64))
    stats = {v.name: keras.ops.convert_to_numpy(v) for v in layer.weights}
    for name, mean in [("w_hat", 1.0), ("m_hat", -1.0), ("w_hat_mul", 1.0), ("m_hat_mul", -1.0)]:
        assert abs(stats[name].mean() - mean) < 0.01 and abs(stats[name].std() - 0.1) < 0.01
    assert abs(stats["g"].mean()) < 0.05 and abs(stats["g"].std() - 0.1) < 0.05
    assert not np.array_equal(stats["w_hat"], stats["w_hat_mul"])
    assert stats["update_phase"] == 0.0
    assert [v.name for v in layer.non_trainable_weights] == ["update_phase"]


def test_the_phase_masks_gradients_but_not_values():
    layer = iNALU(2)
    layer.build((None, 3))
    x = np.random.default_rng(0).uniform(-2, 2, size=(8, 3)).astype("float32")
    trainable = [v.value for v in layer.trainable_variables]
    names = [v.name for v in layer.trainable_variables]

    @jax.jit
    def output_and_gradients(values, fixed):
        def loss(values):
            y = layer.stateless_call(values, fixed, x)[0]
            return jnp.sum(y**2), y

        return jax.grad(loss, has_aux=True)(values)

    def run(phase):
        layer.update_phase.assign(phase)
        grads, y = output_and_gradients(trainable, [v.value for v in layer.non_trainable_variables])
        return np.asarray(y), dict(zip(names, (np.asarray(g) for g in grads)))

    y0, g0 = run(0.0)
    y1, g1 = run(1.0)
    y2, g2 = run(2.0)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(y0, y2)
    for name in names:
        if name == "g":
            np.testing.assert_array_equal(g1[name], 0.0)
            np.testing.assert_allclose(g2[name], g0[name])
        else:
            np.testing.assert_array_equal(g2[name], 0.0)
            np.testing.assert_allclose(g1[name], g0[name])
        assert np.any(g0[name] != 0)


def test_saturation_regularizer_is_tracked_and_scheduled():
    reg = Saturation(0.05)
    layer = iNALU(1, shared_weights=True, w_hat_regularizer=reg, m_hat_regularizer=reg,
                  g_regularizer=reg)
    layer.build((None, 2))
    layer.w_hat.assign([[25.0], [-5.0]])
    layer.m_hat.assign([[-30.0], [19.0]])
    layer.g.assign([0.0])
    # 0.05 · (mean(0, 15) + mean(0, 1) + mean(20)), one term per weight.
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(sum(layer.losses))), 0.05 * (7.5 + 0.5 + 20.0), rtol=1e-6
    )
    # The strength variable is the layer's (once), so a schedule reaches the
    # compiled step: switched off (loss never below 0), the loss is the MSE.
    assert [v is reg.strength_variable for v in layer.non_trainable_weights].count(True) == 1
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.ones((32, 2), "float32")
    schedule = LossTriggerSchedule(reg, 0.05, threshold=0.0)
    history = model.fit(x, np.zeros((32, 1)), batch_size=32, epochs=2, verbose=0,
                        callbacks=[schedule])
    mse = float(np.mean(model.predict(x, verbose=0) ** 2))
    np.testing.assert_allclose(history.history["loss"][-1], mse, rtol=1e-5)


# -- training ----------------------------------------------------------------------
def test_inalu_learns_multiplication():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(1.0, 2.0, size=(2048, 2)).astype("float32")
    layer = iNALU(1)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(inalu_optimizer(), "mse")
    history = model.fit(x, x[:, :1] * x[:, 1:], batch_size=64, epochs=60, verbose=0)
    weights = layer.effective_weights()
    x_far = rng.uniform(10.0, 100.0, size=(256, 2)).astype("float32")
    target = x_far[:, :1] * x_far[:, 1:]
    error = float(np.max(np.abs(model.predict(x_far, verbose=0) - target) / target))
    print(f"iNALU x1*x2: train mse {history.history['loss'][-1]:.3g}, max relative error "
          f"on [10, 100] {error:.3g}, W_mul {weights['W_mul'].ravel()}, gate {weights['gate']}")
    assert history.history["loss"][-1] < 1e-4
    np.testing.assert_allclose(weights["W_mul"], 1.0, atol=5e-3)
    assert weights["gate"][0] < 0.02
    assert layer.formula() == "y0 = x0 * x1"
    assert error < 0.05


# -- saving and recurrence -------------------------------------------------------------
def test_save_and_load_keeps_phase_and_options(tmp_path):
    layer = exact_inalu(np.eye(2), -np.eye(2), gate=0.3, exp_clip=7.0, epsilon=1e-5,
                        g_regularizer=Saturation(0.05))
    layer.update_phase.assign(2.0)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.save(tmp_path / "inalu.keras")
    loaded = keras.saving.load_model(tmp_path / "inalu.keras")
    restored = loaded.layers[-1]
    assert isinstance(restored, iNALU) and restored.get_config() == layer.get_config()
    assert float(keras.ops.convert_to_numpy(restored.update_phase)) == 2.0
    x = np.array([[-3.0, 0.5], [2.0, 4.0]], "float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_inalu_cell_accumulates_a_running_sum():
    x = np.random.default_rng(0).uniform(-5, 5, size=(3, 6, 2)).astype("float32")
    cell = ArithmeticCell(iNALU(1))
    rnn = keras.layers.RNN(cell, return_sequences=True)
    rnn.build(x.shape)
    unit = cell.unit
    for w_hat, m_hat in [(unit.w_hat, unit.m_hat), (unit.w_hat_mul, unit.m_hat_mul)]:
        w_hat.assign(raw(np.ones((3, 1)))[0])
        m_hat.assign(raw(np.ones((3, 1)))[1])
    unit.g.assign([GATE_ADD])
    y = keras.ops.convert_to_numpy(rnn(x))
    np.testing.assert_allclose(y[..., 0], np.cumsum(x.sum(-1), axis=1), rtol=1e-5, atol=1e-5)
    assert cell.h0 == 0.0


# -- validation ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units"),
        ({"units": 1.5}, "units"),
        ({"units": 1, "epsilon": 0.0}, "epsilon"),
        ({"units": 1, "exp_clip": -1.0}, "exp_clip"),
        ({"units": 1, "exp_clip": float("inf")}, "exp_clip"),
        ({"units": 1, "shared_weights": "yes"}, "shared_weights"),
        ({"units": 1, "gate_bias_initializer": "zeros"}, "gate_bias_initializer"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        iNALU(**kwargs)
