"""G-NALU (golden-ratio NALU) and NAC•,σ (SigmoidMulNAC).

G-NALU's formulas are checked against numpy written with base φ explicitly
((φ^{2u} − 1)/(φ^{2u} + 1) and 1/(1 + φ^{−u}), not via tanh(u ln φ)), with
saturated weights for exact sums and products far outside a training range,
and with random weights for every NALU option. Backend parity and the .keras
round trip of these units are in test_nau_nmu.py (one harness run for all
units).
"""

import math

import keras
import numpy as np
import pytest

from nalu_keras import NALU
from nalu_keras import ops as nops
from nalu_keras.layers.golden import GNALU, SigmoidMulNAC
from nalu_keras.regularizers import Saturation

PHI = (1.0 + math.sqrt(5.0)) / 2.0
# tanh_φ(±200) == ±1 and σ_φ(200) == 1 in float32 (200 ln φ ≈ 96), and
# σ_φ(−200) ≈ 2e-42 (0 after flushing denormals): an exact pattern.
SAT = 200.0
PATTERN = np.array([[1, 1, 0], [1, -1, 1], [0, 0, 1], [1, 0, -1]], dtype=np.float64)


def tanh_phi(u):
    u = np.asarray(u, np.float64)
    return (PHI ** (2 * u) - 1) / (PHI ** (2 * u) + 1)


def sigmoid_phi(u):
    return 1.0 / (1.0 + PHI ** (-np.asarray(u, np.float64)))


def saturated(pattern):
    w_hat = np.where(pattern < 0, -SAT, SAT).astype("float32")
    m_hat = np.where(pattern == 0, -SAT, SAT).astype("float32")
    return w_hat, m_hat


def built(layer, input_dim):
    layer.build((None, input_dim))
    return layer


def nalu_reference(x, w_add, w_mul, gate, epsilon=1e-7):
    x = np.asarray(x, np.float64)
    a = x @ w_add
    m = np.exp(np.log(np.abs(x) + epsilon) @ w_mul)
    return gate * a + (1 - gate) * m


def test_golden_functions_match_their_definition():
    u = np.linspace(-20, 20, 81).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(nops.golden_tanh(u)), tanh_phi(u), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(nops.golden_sigmoid(u)),
        sigmoid_phi(u),
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e5])
@pytest.mark.parametrize("side", ["add", "mul"])
def test_gnalu_exact_with_saturated_weights(side, scale):
    layer = built(GNALU(3, gate="independent"), 4)
    w_hat, m_hat = saturated(PATTERN)
    layer.w_hat.assign(w_hat)
    layer.m_hat.assign(m_hat)
    layer.g.assign(np.full((3,), SAT if side == "add" else -SAT, "float32"))
    np.testing.assert_allclose(layer.effective_weights()["W"], PATTERN, rtol=0, atol=1e-30)
    rng = np.random.default_rng(0)
    x = (rng.integers(1, 10, (16, 4)) * scale).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    if side == "add":
        np.testing.assert_array_equal(y, x.astype(np.float64) @ PATTERN)
    else:
        expected = np.prod(x.astype(np.float64)[:, :, None] ** PATTERN, axis=1)
        np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_gnalu_uses_golden_functions_not_the_natural_ones():
    # With Ŵ = M̂ = 2: tanh_φ(2)σ_φ(2) ≈ 0.52, while tanh(2)σ(2) ≈ 0.85.
    layer = built(GNALU(1), 1)
    layer.w_hat.assign([[2.0]])
    layer.m_hat.assign([[2.0]])
    w = layer.effective_weights()["W"][0, 0]
    assert w == pytest.approx(tanh_phi(2.0) * sigmoid_phi(2.0), rel=1e-6)
    assert abs(w - np.tanh(2.0) / (1 + np.exp(-2.0))) > 0.2


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"gate": "abs_input", "gate_bias": True},
        {"shared_weights": False, "gate": "independent"},
        {"shared_weights": False, "log_mode": "clamp", "epsilon": 1e-5},
    ],
)
def test_gnalu_matches_numpy_with_every_nalu_option(options):
    rng = np.random.default_rng(1)
    layer = built(GNALU(3, **options), 4)
    values = {v.name: rng.normal(size=tuple(v.shape)).astype("float32") for v in layer.weights}
    for v in layer.weights:
        v.assign(values[v.name])
    x = rng.uniform(0.5, 3, (16, 4)).astype("float32")
    x[:, 1] *= -1
    w_add = tanh_phi(values["w_hat"]) * sigmoid_phi(values["m_hat"])
    w_mul = w_add
    if options.get("shared_weights") is False:
        w_mul = tanh_phi(values["w_hat_mul"]) * sigmoid_phi(values["m_hat_mul"])
    gate_kind = options.get("gate", "input")
    if gate_kind == "independent":
        gate = sigmoid_phi(values["g"])
    else:
        src = np.abs(x) if gate_kind == "abs_input" else x
        logits = src.astype(np.float64) @ values["g"]
        if options.get("gate_bias"):
            logits = logits + values["g_bias"]
        gate = sigmoid_phi(logits)
    eps = options.get("epsilon", 1e-7)
    if options.get("log_mode") == "clamp":
        xm = np.maximum(np.abs(x.astype(np.float64)), eps)
        expected = gate * (x @ w_add) + (1 - gate) * np.exp(np.log(xm) @ w_mul)
    else:
        expected = nalu_reference(x, w_add, w_mul, gate, eps)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=1e-5)
    eff = layer.effective_weights()
    np.testing.assert_allclose(eff["W"], w_add, rtol=1e-5, atol=1e-7)
    if gate_kind == "independent":
        np.testing.assert_allclose(eff["gate"], gate, rtol=1e-5)


def test_gnalu_is_a_nalu_and_keeps_its_config():
    layer = GNALU(2, shared_weights=False, gate="abs_input", gate_bias=True, exp_clip=30.0)
    assert isinstance(layer, NALU)
    clone = GNALU.from_config(layer.get_config())
    assert type(clone) is GNALU
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("gate, gate_bias", [("input", True), ("abs_input", False), ("independent", False)])
def test_gnalu_reuses_nalus_gate_logits_and_swaps_only_the_squashing(gate, gate_bias):
    # The logits are NALU's (one implementation); G-NALU changes σ to σ_φ.
    assert "gate_logits" not in vars(GNALU) and "gate_value" not in vars(GNALU)
    rng = np.random.default_rng(4)
    nalu = built(NALU(2, gate=gate, gate_bias=gate_bias), 3)
    golden = built(GNALU(2, gate=gate, gate_bias=gate_bias), 3)
    golden.set_weights([rng.normal(size=tuple(v.shape)).astype("float32") for v in golden.weights])
    nalu.set_weights([keras.ops.convert_to_numpy(v) for v in golden.weights])
    x = rng.uniform(-2, 2, (5, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(golden.gate_logits(x))
    np.testing.assert_array_equal(logits, keras.ops.convert_to_numpy(nalu.gate_logits(x)))
    g = keras.ops.convert_to_numpy(golden.g)
    src = np.abs(x) if gate == "abs_input" else x
    expected = g if gate == "independent" else src.astype(np.float64) @ g
    if gate_bias:
        expected = expected + keras.ops.convert_to_numpy(golden.g_bias)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(golden.gate_value(x)), sigmoid_phi(logits), rtol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(nalu.gate_value(x)), 1 / (1 + np.exp(-logits)), rtol=1e-6
    )


def test_gnalu_no_nan_when_gate_is_one_and_product_overflows():
    layer = built(GNALU(1, gate="independent"), 2)
    w_hat, m_hat = saturated(np.array([[1.0], [1.0]]))
    layer.w_hat.assign(w_hat)
    layer.m_hat.assign(m_hat)
    layer.g.assign([SAT])
    x = np.array([[1e30, 1e30]], "float32")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, [[2e30]], rtol=1e-6)


def test_gnalu_tracks_regularizer_strengths():
    reg = Saturation(0.05)
    layer = built(GNALU(2, w_hat_regularizer=reg, m_hat_regularizer=reg), 3)
    assert sum(v is reg.strength_variable for v in layer.non_trainable_weights) == 1
    assert len(layer.losses) == 2


# -- SigmoidMulNAC -----------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_sigmoid_mul_nac_exact_products(scale):
    pattern = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float64)
    layer = built(SigmoidMulNAC(2, log_mode="clamp"), 3)
    layer.w_hat.assign(np.where(pattern == 1, 40.0, -40.0).astype("float32"))
    np.testing.assert_allclose(layer.effective_weights()["W"], pattern, atol=1e-17)
    x = (np.random.default_rng(2).integers(1, 10, (16, 3)) * scale).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    expected = np.prod(x.astype(np.float64)[:, :, None] ** pattern, axis=1)
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_sigmoid_mul_nac_matches_numpy_and_loses_the_sign():
    rng = np.random.default_rng(3)
    layer = built(SigmoidMulNAC(3), 4)
    w_hat = rng.normal(size=(4, 3)).astype("float32")
    layer.w_hat.assign(w_hat)
    x = rng.uniform(-3, 3, (16, 4)).astype("float32")
    w = 1 / (1 + np.exp(-w_hat.astype(np.float64)))
    expected = np.exp(np.log(np.abs(x.astype(np.float64)) + 1e-7) @ w)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert np.all(y > 0)  # the log path sees |x|: no negative products
    assert np.all((layer.effective_weights()["W"] > 0) & (layer.effective_weights()["W"] < 1))


def test_sigmoid_mul_nac_cannot_divide_but_exp_clip_caps():
    layer = built(SigmoidMulNAC(1, exp_clip=5.0), 2)
    layer.w_hat.assign([[40.0], [40.0]])
    y = keras.ops.convert_to_numpy(layer(np.array([[1e4, 1e4]], "float32")))
    np.testing.assert_allclose(y, [[np.exp(5.0)]], rtol=1e-6)
    assert SigmoidMulNAC.initial_state_value == 1.0


def test_sigmoid_mul_nac_config_round_trip():
    layer = SigmoidMulNAC(2, epsilon=1e-5, log_mode="clamp", exp_clip=10.0,
                          w_hat_regularizer=Saturation(0.1))
    clone = SigmoidMulNAC.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# -- validation ------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: GNALU(-1), "-1"),
        (lambda: GNALU(2, gate="golden"), "'golden'"),
        (lambda: GNALU(2, epsilon=0.0), "0.0"),
        (lambda: GNALU(2, log_mode="mul"), "'mul'"),
        (lambda: SigmoidMulNAC(0), "0"),
        (lambda: SigmoidMulNAC(2, epsilon=-1e-7), "-1e-07"),
        (lambda: SigmoidMulNAC(2, log_mode="abs"), "'abs'"),
        (lambda: SigmoidMulNAC(2, exp_clip=float("inf")), "inf"),
    ],
)
def test_constructor_validation(make, bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        make()
