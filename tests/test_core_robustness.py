"""Robustness of the core units: extreme inputs, saturated gates, bad arguments.

* Inputs with zeros, negatives, ±1e30 and ±1e-30 never give NaN outputs, and
  where the math is finite, never NaN (or inf) gradients.
* With the NALU gate exactly 1 the multiplicative path may overflow to inf
  (x = 1e30 with W = +1 on several inputs): the output is still exactly the
  additive path and the gradients are finite. Symmetrically for a gate
  exactly 0 with an overflowing additive path.
* The log path works on |x|: (-2)·3 gives +6 (documented limitation).
* Invalid constructor arguments and wrong input shapes raise clear errors.
"""

import math
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from nalu_keras import NAC, NALU, ArithmeticCell, MulNAC, NACCell, NALUCell

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (get_weights, np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

SAT = 30.0
IN_DIM, UNITS = 4, 3

EXTREME_VALUES = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 1e30, -1e30, 1e-30, -1e-30]


# -- helpers -----------------------------------------------------------------
def extreme_inputs(include_huge=True):
    """Rows mixing zeros, signs, tiny and (optionally) huge magnitudes."""
    values = [v for v in EXTREME_VALUES if include_huge or abs(v) < 1e29]
    rng = np.random.default_rng(0)
    rows = [np.full(IN_DIM, v) for v in values]  # constant rows: all 0, all 1e30...
    rows += [rng.choice(values, size=IN_DIM) for _ in range(40)]  # mixed rows
    return np.array(rows, dtype="float32")


def build_random(layer, seed=0, scale=0.7):
    layer.build((None, IN_DIM))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, scale, size=w.shape) for w in layer.get_weights()])
    return layer


def set_exact(layer, pattern, pattern_mul=None, g=None, g_bias=None):
    pattern = np.asarray(pattern, dtype="float32")
    layer.build((None, pattern.shape[0]))
    layer.w_hat.assign(np.where(pattern < 0, -SAT, SAT))
    layer.m_hat.assign(np.where(pattern == 0, -SAT, SAT))
    if pattern_mul is not None:
        pattern_mul = np.asarray(pattern_mul, dtype="float32")
        layer.w_hat_mul.assign(np.where(pattern_mul < 0, -SAT, SAT))
        layer.m_hat_mul.assign(np.where(pattern_mul == 0, -SAT, SAT))
    if g is not None:
        layer.g.assign(np.asarray(g, dtype="float32"))
    if g_bias is not None:
        layer.g_bias.assign(np.asarray(g_bias, dtype="float32"))
    return layer


def run(layer, x):
    return keras.ops.convert_to_numpy(layer(np.asarray(x, dtype="float32")))


def weight_gradients(layer, x):
    """jax.grad of sum(layer(x)) w.r.t. every trainable weight, as numpy."""
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    x = jnp.asarray(x, dtype="float32")

    def loss(weights):
        out, _ = layer.stateless_call(weights, non_trainable, x)
        return jnp.sum(out)

    grads = jax.grad(loss)(trainable)
    return {v.name: np.asarray(g) for v, g in zip(layer.trainable_variables, grads)}


def assert_finite_gradients(layer, x):
    grads = weight_gradients(layer, x)
    for name, g in grads.items():
        assert not np.isnan(g).any(), f"NaN in the gradient of {name}"
        assert np.isfinite(g).all(), f"inf in the gradient of {name}"
    return grads


LAYER_FACTORIES = {
    "NAC": lambda: NAC(UNITS),
    "MulNAC": lambda: MulNAC(UNITS),
    "MulNAC-clamp": lambda: MulNAC(UNITS, log_mode="clamp"),
    "MulNAC-clip": lambda: MulNAC(UNITS, exp_clip=20.0),
    "NALU": lambda: NALU(UNITS),
    "NALU-abs-bias": lambda: NALU(UNITS, gate="abs_input", gate_bias=True),
    "NALU-independent": lambda: NALU(UNITS, gate="independent"),
    "NALU-separate-clamp-clip": lambda: NALU(
        UNITS, shared_weights=False, log_mode="clamp", exp_clip=20.0
    ),
}


# -- extreme inputs, random weights -----------------------------------------
@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_extreme_inputs_never_give_nan_outputs(name):
    """Random weights, inputs with 0, ±1e-30, ±1e30: inf is possible, NaN not."""
    layer = build_random(LAYER_FACTORIES[name]())
    out = run(layer, extreme_inputs())
    assert out.shape == (len(extreme_inputs()), UNITS)
    assert not np.isnan(out).any()


@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_zeros_negatives_and_tiny_inputs_give_finite_gradients(name):
    """Where the math is finite (no 1e30 here), so are outputs and gradients."""
    layer = build_random(LAYER_FACTORIES[name]())
    x = extreme_inputs(include_huge=False)
    out = run(layer, x)
    assert np.isfinite(out).all()
    grads = assert_finite_gradients(layer, x)
    assert set(grads) == {v.name for v in layer.trainable_variables}


def test_all_zero_input_to_mulnac_is_finite_and_small():
    """log(0 + ε) = log ε: with W = +1 the product of zeros is ε^k, not NaN."""
    layer = set_exact(MulNAC(1), [[1], [1], [0], [0]])
    out = run(layer, np.zeros((1, IN_DIM)))
    np.testing.assert_allclose(out, [[1e-14]], rtol=1e-4)
    clamp = set_exact(MulNAC(1, log_mode="clamp"), [[1], [1], [0], [0]])
    np.testing.assert_allclose(run(clamp, np.zeros((1, IN_DIM))), [[1e-14]], rtol=1e-4)
    assert_finite_gradients(layer, np.zeros((1, IN_DIM)))


def test_division_by_zero_is_large_but_finite():
    """x / 0 becomes x / ε: huge, finite, and with a finite gradient."""
    layer = set_exact(MulNAC(1), [[1], [-1], [0], [0]])
    x = np.array([[3.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(run(layer, x), [[3.0 / 1e-7]], rtol=1e-4)
    assert_finite_gradients(layer, x)


# -- saturated gates ----------------------------------------------------------
ALL_ONES = [[1, 1, 1]] * IN_DIM
HUGE = np.full((2, IN_DIM), 1e30, dtype="float32")  # mul path: (1e30)^4 = inf


def _gate_one_layers():
    """NALUs whose gate is exactly 1 for HUGE inputs, W = +1 everywhere."""
    return {
        "input": set_exact(NALU(UNITS), ALL_ONES, g=np.full((IN_DIM, UNITS), 50.0)),
        "abs_input": set_exact(
            NALU(UNITS, gate="abs_input"), ALL_ONES, g=np.full((IN_DIM, UNITS), 50.0)
        ),
        "independent": set_exact(
            NALU(UNITS, gate="independent"), ALL_ONES, g=np.full(UNITS, 200.0)
        ),
        "bias": set_exact(
            NALU(UNITS, gate_bias=True),
            ALL_ONES,
            g=np.zeros((IN_DIM, UNITS)),
            g_bias=np.full(UNITS, 200.0),
        ),
        "separate": set_exact(
            NALU(UNITS, shared_weights=False),
            ALL_ONES,
            ALL_ONES,
            g=np.full((IN_DIM, UNITS), 50.0),
        ),
    }


@pytest.mark.parametrize("kind", list(_gate_one_layers()))
def test_gate_one_with_overflowing_mul_path_gives_exact_sum(kind):
    layer = _gate_one_layers()[kind]
    gate = keras.ops.convert_to_numpy(layer.gate_value(HUGE))
    assert np.all(gate == 1.0)
    # the multiplicative path alone overflows...
    mul = set_exact(MulNAC(UNITS), ALL_ONES)
    assert np.isinf(run(mul, HUGE)).all()
    # ... but a NALU that does not use it returns the exact sum
    np.testing.assert_allclose(run(layer, HUGE), np.full((2, UNITS), 4e30), rtol=1e-6)


@pytest.mark.parametrize("kind", list(_gate_one_layers()))
def test_gate_one_with_overflowing_mul_path_has_finite_gradients(kind):
    layer = _gate_one_layers()[kind]
    grads = assert_finite_gradients(layer, HUGE)
    # the gate is saturated: no gradient flows into it
    assert np.all(grads["g"] == 0.0)


def test_naive_mix_would_be_nan_where_the_unit_is_not():
    """The reason for the care above: g·a + (1-g)·inf is NaN with g = 1."""
    with np.errstate(invalid="ignore", over="ignore"):
        g, a, m = np.float32(1.0), np.float32(4e30), np.exp(np.float32(300.0))
        assert np.isnan(g * a + (1 - g) * m)
    layer = _gate_one_layers()["input"]
    assert not np.isnan(run(layer, HUGE)).any()


def test_gate_zero_with_overflowing_add_path_gives_exact_product():
    """Gate exactly 0; the additive path overflows (3e38 + 3e38 = inf)."""
    big = np.array([[3e38, 3e38, 2.0, 8.0]], dtype="float32")
    pattern_add = [[1, 1, 1]] * IN_DIM
    pattern_mul = [[0, 0, 0], [0, 0, 0], [1, 1, -1], [1, -1, 1]]  # 16, 1/4, 4
    expected = np.array([[16.0, 0.25, 4.0]])
    nac = set_exact(NAC(UNITS), pattern_add)
    assert np.isinf(run(nac, big)).all()
    for layer in (
        set_exact(
            NALU(UNITS, shared_weights=False, gate="independent"),
            pattern_add,
            pattern_mul,
            g=np.full(UNITS, -200.0),
        ),
        set_exact(
            NALU(UNITS, shared_weights=False, gate_bias=True),
            pattern_add,
            pattern_mul,
            g=np.zeros((IN_DIM, UNITS)),
            g_bias=np.full(UNITS, -200.0),
        ),
    ):
        assert np.all(keras.ops.convert_to_numpy(layer.gate_value(big)) == 0.0)
        np.testing.assert_allclose(run(layer, big), expected, rtol=1e-5)
        assert_finite_gradients(layer, big)


@pytest.mark.parametrize("log_mode", ["add", "clamp"])
def test_gate_zero_with_tiny_inputs(log_mode):
    """Gate exactly 0, inputs ±1e-30: products of ε-floored logs, all finite."""
    layer = set_exact(
        NALU(UNITS, gate="independent", log_mode=log_mode),
        [[1, 1, -1], [1, 0, -1], [0, 1, 0], [0, 0, 0]],
        g=np.full(UNITS, -200.0),
    )
    x = np.array([[1e-30, -1e-30, 1e-30, 1e-30], [0.0, 0.0, -0.0, 0.0]], dtype="float32")
    out = run(layer, x)
    # |x| is floored at ε = 1e-7 either way (add: 1e-30 + ε rounds to ε)
    np.testing.assert_allclose(
        out, np.tile([1e-14, 1e-14, 1e14], (2, 1)), rtol=1e-4
    )
    assert_finite_gradients(layer, x)


@pytest.mark.parametrize("omega", [20.0, 80.0])
def test_exp_clip_prevents_overflow(omega):
    """With exp_clip the huge product is e^ω, finite, with finite gradients."""
    for layer in (
        set_exact(MulNAC(UNITS, exp_clip=omega), ALL_ONES),
        set_exact(NALU(UNITS, exp_clip=omega), ALL_ONES, g=np.full((IN_DIM, UNITS), -50.0)),
    ):
        out = run(layer, HUGE)
        np.testing.assert_allclose(out, np.float32(math.exp(omega)), rtol=1e-6)
        assert_finite_gradients(layer, HUGE)


def test_partially_open_gate_with_overflow_is_inf_not_nan():
    """Documented: 0 < g < 1 and an overflowing product give inf, as the formula."""
    layer = set_exact(
        NALU(UNITS, gate="independent"), ALL_ONES, g=np.zeros(UNITS)
    )  # g = 0.5
    out = run(layer, HUGE)
    assert np.all(np.isposinf(out))


# -- sign limitation ----------------------------------------------------------
def test_mulnac_log_path_loses_the_sign():
    """(-2)·3 -> +6: MulNAC multiplies magnitudes (the paper's formula)."""
    layer = set_exact(MulNAC(1), [[1], [1], [0], [0]])
    x = np.array([[-2.0, 3.0, 5.0, 7.0], [-2.0, -3.0, 5.0, 7.0], [2.0, -3.0, 1.0, 1.0]])
    np.testing.assert_allclose(run(layer, x), [[6.0], [6.0], [6.0]], rtol=1e-5)


def test_nalu_multiplicative_path_loses_the_sign():
    layer = set_exact(
        NALU(1, gate="independent"), [[1], [1], [0], [0]], g=np.full(1, -200.0)
    )
    np.testing.assert_allclose(run(layer, [[-2.0, 3.0, 1.0, 1.0]]), [[6.0]], rtol=1e-5)
    quotient = set_exact(
        NALU(1, gate="independent"), [[1], [-1], [0], [0]], g=np.full(1, -200.0)
    )
    np.testing.assert_allclose(run(quotient, [[-6.0, 3.0, 1.0, 1.0]]), [[2.0]], rtol=1e-5)


# -- invalid constructor arguments -------------------------------------------
def _raises_naming(value, func, *args, **kwargs):
    """`func` raises a ValueError whose message shows the bad `value`."""
    with pytest.raises(ValueError) as info:
        func(*args, **kwargs)
    # the messages read "... got <repr>." or "...: <repr>."
    assert re.search(rf"(got|:) {re.escape(repr(value))}", str(info.value)), str(
        info.value
    )
    return info


ALL_UNIT_CLASSES = [NAC, MulNAC, NALU, NACCell, NALUCell]


@pytest.mark.parametrize("cls", ALL_UNIT_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("units", [0, -1, 1.5, True, "3", None, 2.0])
def test_invalid_units(cls, units):
    info = _raises_naming(units, cls, units)
    assert "units" in str(info.value)


@pytest.mark.parametrize("cls", ALL_UNIT_CLASSES, ids=lambda c: c.__name__)
def test_valid_integer_like_units(cls):
    """numpy integers are integers too."""
    for units in (np.int64(3), np.int32(3), 3):
        layer = cls(units)
        unit = layer.unit if hasattr(layer, "unit") else layer
        assert unit.units == 3 and type(unit.units) is int


@pytest.mark.parametrize("cls", [MulNAC, NALU, NALUCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("epsilon", [0, 0.0, -1, -1e-7, float("nan"), float("inf"), "1e-7", True])
def test_invalid_epsilon(cls, epsilon):
    info = _raises_naming(epsilon, cls, 2, epsilon=epsilon)
    assert "epsilon" in str(info.value)


@pytest.mark.parametrize("cls", [MulNAC, NALU], ids=lambda c: c.__name__)
@pytest.mark.parametrize("exp_clip", [0, 0.0, -1, float("nan"), float("inf"), "20"])
def test_invalid_exp_clip(cls, exp_clip):
    info = _raises_naming(exp_clip, cls, 2, exp_clip=exp_clip)
    assert "exp_clip" in str(info.value)


@pytest.mark.parametrize("cls", [MulNAC, NALU, NALUCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("log_mode", ["foo", "ADD", None, 1])
def test_invalid_log_mode(cls, log_mode):
    info = _raises_naming(log_mode, cls, 2, log_mode=log_mode)
    assert "log_mode" in str(info.value)
    assert "'add'" in str(info.value) and "'clamp'" in str(info.value)  # lists choices


@pytest.mark.parametrize("gate", ["foo", "Input", None, 0])
def test_invalid_gate(gate):
    info = _raises_naming(gate, NALU, 2, gate=gate)
    assert "gate" in str(info.value)
    for choice in ("input", "abs_input", "independent"):
        assert repr(choice) in str(info.value)


@pytest.mark.parametrize("name", ["shared_weights", "gate_bias"])
@pytest.mark.parametrize("value", ["yes", 1, 0, None, "False"])
def test_invalid_booleans(name, value):
    info = _raises_naming(value, NALU, 2, **{name: value})
    assert name in str(info.value)


def test_numpy_bool_is_accepted():
    layer = NALU(2, shared_weights=np.bool_(False), gate_bias=np.bool_(True))
    assert layer.shared_weights is False and layer.gate_bias is True


def test_gate_bias_with_independent_gate_is_rejected():
    with pytest.raises(ValueError, match="gate_bias.*independent"):
        NALU(2, gate="independent", gate_bias=True)
    NALU(2, gate="independent", gate_bias=False)  # fine


@pytest.mark.parametrize("cls", [NAC, MulNAC, NALU, NACCell, NALUCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwarg", ["foo", "units_typo", "w_hat_initialiser", "bias_initializer"])
def test_unknown_keyword_argument(cls, kwarg):
    with pytest.raises(ValueError, match=re.escape(kwarg)):
        cls(2, **{kwarg: 1})


def test_weight_options_of_other_units_are_rejected():
    """NAC has no w_hat_mul or g: their options are unknown arguments."""
    with pytest.raises(ValueError, match="w_hat_mul_initializer"):
        NAC(2, w_hat_mul_initializer="zeros")
    with pytest.raises(ValueError, match="g_regularizer"):
        MulNAC(2, g_regularizer="l2")


@pytest.mark.parametrize("kwarg", ["g", "w_hat", "m_hat_mul", "g_bias"])
def test_unknown_keyword_named_like_a_weight(kwarg):
    """A weight's own name is not an argument (it once raised IndexError for
    `g`, whose name has no underscore)."""
    with pytest.raises(ValueError, match=re.escape(repr(kwarg))):
        NALU(2, **{kwarg: 1.0})


@pytest.mark.parametrize("bad", ["foo", "glorot", 3.5])
def test_invalid_initializer_is_rejected(bad):
    with pytest.raises(ValueError):
        NAC(2, w_hat_initializer=bad)


def test_arithmetic_cell_requires_an_arithmetic_unit():
    for bad in (keras.layers.Dense(1), "NAC", None, NAC):
        with pytest.raises(ValueError, match="unit"):
            ArithmeticCell(bad)


@pytest.mark.parametrize("bad", ["1", True, False, [1.0], np.ones(2)])
def test_arithmetic_cell_rejects_bad_initial_state_value(bad):
    with pytest.raises(ValueError, match="initial_state_value"):
        ArithmeticCell(NAC(1), initial_state_value=bad)
    with pytest.raises(ValueError, match="initial_state_value"):
        NACCell(1, initial_state_value=bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_arithmetic_cell_rejects_non_finite_initial_state_value(bad):
    """A NaN or infinite h0 would make every output NaN/inf."""
    with pytest.raises(ValueError, match="initial_state_value"):
        ArithmeticCell(NAC(1), initial_state_value=bad)
    with pytest.raises(ValueError, match="initial_state_value"):
        NALUCell(1, initial_state_value=bad)


# -- wrong input shapes -------------------------------------------------------
@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_rank_one_input_is_rejected(name):
    layer = LAYER_FACTORIES[name]()
    with pytest.raises(ValueError, match="ndim"):
        layer(np.ones((IN_DIM,), dtype="float32"))
    assert not layer.built


@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_build_rejects_rank_one_and_unknown_last_axis(name):
    with pytest.raises(ValueError, match="rank >= 2"):
        LAYER_FACTORIES[name]().build((IN_DIM,))
    with pytest.raises(ValueError, match="last axis"):
        LAYER_FACTORIES[name]().build((None, None))


@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_built_layer_rejects_a_different_last_axis(name):
    layer = LAYER_FACTORIES[name]()
    layer(np.ones((2, IN_DIM), dtype="float32"))
    with pytest.raises(ValueError, match=f"axis -1.*{IN_DIM}"):
        layer(np.ones((2, IN_DIM + 1), dtype="float32"))
    # other leading shapes are fine
    assert run(layer, np.ones((2, 3, IN_DIM))).shape == (2, 3, UNITS)


def test_rnn_rejects_a_different_feature_size():
    rnn = keras.layers.RNN(NACCell(1))
    rnn(np.ones((2, 5, 3), dtype="float32"))
    with pytest.raises(ValueError):
        rnn(np.ones((2, 5, 4), dtype="float32"))
