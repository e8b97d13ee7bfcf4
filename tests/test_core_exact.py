"""Exact arithmetic of NAC, MulNAC and NALU with saturated ("learned") weights.

Saturating the raw weights realizes an exact pattern W in {-1, 0, 1}:
tanh(±30) == ±1 and sigmoid(30) == 1 in float32, while sigmoid(-30) ~ 9.4e-14
is zero for every practical purpose. With such weights the units must compute
exact sums, differences, products and quotients -- also for inputs 1e3 to 1e6
times larger than a typical training range ([1, 2]); this extrapolation is the
whole point of the NAC/NALU. The reference values are computed with numpy in
float64 from the exact integer pattern.

Gates are saturated the same way: sigmoid(±50 * x) with |x| >= 1e3 is exactly
0 or 1 in float32, and for the independent gate sigmoid(±200) is exactly 0/1.
"""

import math

import keras
import numpy as np
import pytest

from nalu_keras import NAC, NALU, MulNAC

SAT = 30.0  # tanh(30) == 1 and sigmoid(30) == 1 in float32
SCALES = [1e3, 1e4, 1e5, 1e6]  # far outside a training range of [1, 2]
RTOL = 1e-5  # float32 relative tolerance

# A pattern with additions, subtractions, omissions and an empty column would
# be degenerate for products; every column below uses at least one input.
PATTERN = np.array(
    [
        [1, 1, 0],
        [1, -1, 1],
        [0, 0, 1],
        [1, 0, -1],
    ],
    dtype=np.float64,
)
# A second pattern, for the multiplicative path when weights are not shared.
PATTERN_MUL = np.array(
    [
        [0, 1, 1],
        [1, 0, -1],
        [-1, 1, 0],
        [0, 0, 1],
    ],
    dtype=np.float64,
)


# -- helpers -----------------------------------------------------------------
def raw_weights(pattern):
    """(w_hat, m_hat) such that tanh(w_hat) * sigmoid(m_hat) realizes `pattern`."""
    pattern = np.asarray(pattern, dtype=np.float64)
    w_hat = np.where(pattern < 0, -SAT, SAT)
    m_hat = np.where(pattern == 0, -SAT, SAT)
    return w_hat.astype("float32"), m_hat.astype("float32")


def set_exact(layer, pattern, pattern_mul=None, g=None, g_bias=None):
    """Assign saturated weights to a built layer."""
    w_hat, m_hat = raw_weights(pattern)
    layer.w_hat.assign(w_hat)
    layer.m_hat.assign(m_hat)
    if pattern_mul is not None:
        w_hat_mul, m_hat_mul = raw_weights(pattern_mul)
        layer.w_hat_mul.assign(w_hat_mul)
        layer.m_hat_mul.assign(m_hat_mul)
    if g is not None:
        layer.g.assign(np.asarray(g, dtype="float32"))
    if g_bias is not None:
        layer.g_bias.assign(np.asarray(g_bias, dtype="float32"))
    return layer


def built(layer, input_dim=4):
    layer.build((None, input_dim))
    return layer


def run(layer, x):
    return keras.ops.convert_to_numpy(layer(np.asarray(x, dtype="float32")))


def ref_sum(x, pattern):
    return np.asarray(x, np.float64) @ pattern


def ref_prod(x, pattern):
    """Π_i |x_i|^{W_ij} in float64 (the log path works on |x|)."""
    return np.exp(np.log(np.abs(np.asarray(x, np.float64))) @ pattern)


def assert_sum_close(actual, x, pattern, expected):
    """Sums may cancel: bound the error by the magnitude of the summands."""
    scale = np.abs(np.asarray(x, np.float64)) @ np.abs(pattern)
    assert np.all(np.isfinite(actual))
    np.testing.assert_array_less(np.abs(actual - expected), RTOL * scale + 1e-30)


def inputs(rng, scale, shape=(16, 4), signed=False):
    x = rng.uniform(1.0, 2.0, size=shape) * scale
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=shape)
    return x.astype("float32")


# Gate weights that make every output of a NALU additive (1) or multiplicative
# (0) for positive inputs, and a mixed one: output 0 adds, outputs 1, 2 multiply.
G_ADD = np.full((4, 3), 50.0)
G_MUL = np.full((4, 3), -50.0)
G_MIXED = np.tile(np.array([50.0, -50.0, -50.0]), (4, 1))


def mixed_reference(x, pattern_add, pattern_mul):
    """Output 0 from the additive path, outputs 1 and 2 from the log path."""
    expected = ref_prod(x, pattern_mul)
    expected[..., 0] = ref_sum(x, pattern_add)[..., 0]
    return expected


# -- NAC ---------------------------------------------------------------------
def test_saturated_raw_weights_give_exact_pattern():
    layer = set_exact(built(NAC(3)), PATTERN)
    W = layer.effective_weights()["W"]
    np.testing.assert_array_equal(W[PATTERN != 0], PATTERN[PATTERN != 0])
    assert np.all(np.abs(W[PATTERN == 0]) < 1e-12)


@pytest.mark.parametrize("scale", [1.0] + SCALES)
def test_nac_exact_sums_and_differences(scale):
    rng = np.random.default_rng(0)
    layer = set_exact(built(NAC(3)), PATTERN)
    x = inputs(rng, scale, signed=True)
    out = run(layer, x)
    assert out.shape == (16, 3)
    assert_sum_close(out, x, PATTERN, ref_sum(x, PATTERN))


def test_nac_integer_inputs_are_exact():
    """Small integers are exactly representable: the sum must be bit-exact."""
    layer = set_exact(built(NAC(3)), PATTERN)
    x = np.array([[1000.0, 250000.0, -7.0, 31.0], [3.0, -4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(run(layer, x), ref_sum(x, PATTERN))


# -- MulNAC ------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0] + SCALES)
def test_mulnac_exact_products_and_quotients(scale):
    rng = np.random.default_rng(1)
    layer = set_exact(built(MulNAC(3)), PATTERN)
    x = inputs(rng, scale)
    out = run(layer, x)
    # column 0: x0*x1*x3, column 1: x0/x1, column 2: x1*x2/x3
    np.testing.assert_allclose(out, ref_prod(x, PATTERN), rtol=RTOL)


def test_mulnac_powers_of_repeated_inputs():
    """Feeding the same value twice with W=1 squares it; W=-1 twice: 1/x^2."""
    layer = set_exact(built(MulNAC(2), input_dim=2), np.array([[1, -1], [1, -1]]))
    x = np.array([[1e3, 1e3], [3e5, 3e5], [2e6, 2e6]])
    out = run(layer, x)
    np.testing.assert_allclose(out[:, 0], x[:, 0] ** 2, rtol=RTOL)
    np.testing.assert_allclose(out[:, 1], x[:, 0] ** -2.0, rtol=RTOL)


def test_mulnac_log_mode_clamp_is_exact_for_small_inputs():
    """log(max(|x|, ε)) is exact for |x| >= ε; log(|x| + ε) is not (ε/|x|)."""
    x = np.array([[1e-3, 2e-3, 5e-3, 4e-3]], dtype="float32")
    clamp = set_exact(built(MulNAC(3, log_mode="clamp")), PATTERN)
    add = set_exact(built(MulNAC(3, log_mode="add")), PATTERN)
    expected = ref_prod(x, PATTERN)
    np.testing.assert_allclose(run(clamp, x), expected, rtol=RTOL)
    # the paper's log(|x| + ε) is off by about ε/|x| = 1e-4 per factor here
    assert np.max(np.abs(run(add, x) / expected - 1.0)) > 5e-5


@pytest.mark.parametrize("scale", SCALES)
def test_mulnac_log_mode_clamp_exact_at_large_inputs(scale):
    rng = np.random.default_rng(2)
    layer = set_exact(built(MulNAC(3, log_mode="clamp")), PATTERN)
    x = inputs(rng, scale, signed=True)
    np.testing.assert_allclose(run(layer, x), ref_prod(x, PATTERN), rtol=RTOL)


def test_mulnac_exp_clip_caps_output_at_e_omega():
    omega = 20.0
    layer = set_exact(built(MulNAC(3, exp_clip=omega)), PATTERN)
    x = np.array(
        [
            [2e6, 3e6, 1.5e6, 1e6],  # col 0 = 6e18 > e^20, col 2 = 3e6*1.5 < e^20
            [1.5, 2.0, 1.2, 1.1],  # every column below e^20: exact
        ],
        dtype="float32",
    )
    out = run(layer, x)
    expected = ref_prod(x, PATTERN)
    cap = np.float32(math.exp(omega))
    exceeds = np.log(expected) > omega
    assert exceeds[0, 0] and not exceeds[1].any()
    np.testing.assert_allclose(out[exceeds], cap, rtol=1e-6)
    np.testing.assert_allclose(out[~exceeds], expected[~exceeds], rtol=RTOL)
    assert np.all(out <= cap * (1 + 1e-6))


# -- NALU --------------------------------------------------------------------
@pytest.mark.parametrize("scale", SCALES)
def test_nalu_gate_one_is_exact_addition(scale):
    rng = np.random.default_rng(3)
    layer = set_exact(built(NALU(3)), PATTERN, g=G_ADD)
    x = inputs(rng, scale)
    assert_sum_close(run(layer, x), x, PATTERN, ref_sum(x, PATTERN))


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_gate_zero_is_exact_multiplication(scale):
    rng = np.random.default_rng(4)
    layer = set_exact(built(NALU(3)), PATTERN, g=G_MUL)
    x = inputs(rng, scale)
    np.testing.assert_allclose(run(layer, x), ref_prod(x, PATTERN), rtol=RTOL)


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_gate_selects_path_per_output(scale):
    rng = np.random.default_rng(5)
    layer = set_exact(built(NALU(3)), PATTERN, g=G_MIXED)
    x = inputs(rng, scale)
    gate = keras.ops.convert_to_numpy(layer.gate_value(x))
    np.testing.assert_array_equal(gate, np.tile([1.0, 0.0, 0.0], (16, 1)))
    np.testing.assert_allclose(
        run(layer, x), mixed_reference(x, PATTERN, PATTERN), rtol=RTOL
    )


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_separate_weights_use_their_own_pattern(scale):
    rng = np.random.default_rng(6)
    layer = set_exact(
        built(NALU(3, shared_weights=False)), PATTERN, PATTERN_MUL, g=G_MIXED
    )
    x = inputs(rng, scale)
    out = run(layer, x)
    np.testing.assert_allclose(out, mixed_reference(x, PATTERN, PATTERN_MUL), rtol=RTOL)
    # the shared-weight reference would be different: the option matters
    assert not np.allclose(out, mixed_reference(x, PATTERN, PATTERN), rtol=1e-2)


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_independent_gate(scale):
    rng = np.random.default_rng(7)
    layer = built(NALU(3, gate="independent"))
    assert tuple(layer.g.shape) == (3,)
    set_exact(layer, PATTERN, g=[50.0, -50.0, -50.0])
    x = inputs(rng, scale, signed=True)
    # sigmoid(-50) ~ 2e-22: the additive leak is far below float32 resolution
    np.testing.assert_allclose(
        run(layer, x), mixed_reference(x, PATTERN, PATTERN), rtol=RTOL
    )


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_abs_input_gate_with_negative_inputs(scale):
    """The "abs_input" gate sees |x|: negative inputs still open the same path."""
    rng = np.random.default_rng(8)
    layer = set_exact(built(NALU(3, gate="abs_input")), PATTERN, g=G_MIXED)
    x = -inputs(rng, scale)  # all negative
    expected = mixed_reference(x, PATTERN, PATTERN)
    np.testing.assert_allclose(run(layer, x), expected, rtol=RTOL)
    # the plain input gate flips for negative inputs: add <-> multiply
    plain = set_exact(built(NALU(3, gate="input")), PATTERN, g=G_MIXED)
    assert not np.allclose(run(plain, x), expected, rtol=1e-2)


@pytest.mark.parametrize("gate", ["input", "abs_input"])
def test_nalu_gate_bias_alone_selects_paths(gate):
    """With G = 0 the gate is σ(bias): +50 adds, -200 multiplies (exact 0)."""
    rng = np.random.default_rng(9)
    layer = built(NALU(3, gate=gate, gate_bias=True))
    assert tuple(layer.g_bias.shape) == (3,)
    set_exact(layer, PATTERN, g=np.zeros((4, 3)), g_bias=[50.0, -200.0, -200.0])
    x = inputs(rng, 1e5, signed=True)
    np.testing.assert_allclose(
        run(layer, x), mixed_reference(x, PATTERN, PATTERN), rtol=RTOL
    )


def test_nalu_gate_bias_shifts_the_gate():
    """The bias is added inside σ: G alone would add, the bias overrides it."""
    layer = built(NALU(3, gate_bias=True))
    x = np.full((2, 4), 1.0, dtype="float32")
    set_exact(layer, PATTERN, g=np.full((4, 3), 10.0), g_bias=[0.0, -100.0, -100.0])
    gate = keras.ops.convert_to_numpy(layer.gate_value(x))
    expected = 1.0 / (1.0 + np.exp(-np.array([40.0, -60.0, -60.0])))
    np.testing.assert_allclose(gate, np.tile(expected, (2, 1)), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("scale", SCALES)
def test_nalu_log_mode_clamp(scale):
    rng = np.random.default_rng(10)
    layer = set_exact(built(NALU(3, log_mode="clamp")), PATTERN, g=G_MIXED)
    x = inputs(rng, scale)
    np.testing.assert_allclose(
        run(layer, x), mixed_reference(x, PATTERN, PATTERN), rtol=RTOL
    )


def test_nalu_exp_clip_caps_the_multiplicative_path_only():
    omega = 20.0  # e^20 ~ 4.85e8
    layer = set_exact(built(NALU(3, exp_clip=omega)), PATTERN, g=G_MIXED)
    # column 0 adds x0 + x1 + x3, column 1 = x0 / x1, column 2 = x1 * x2 / x3
    x = np.array(
        [
            [3e8, 4e8, 10.0, 1e3],  # col 2 = 4e6, below e^20
            [3e8, 4e8, 4e12, 1.0],  # col 2 = 1.6e21, above e^20
        ],
        dtype="float32",
    )
    out = run(layer, x)
    cap = np.float32(math.exp(omega))
    # the additive output exceeds e^20 and is not clipped ...
    np.testing.assert_allclose(out[:, 0], [7e8 + 1e3, 7e8 + 1.0], rtol=RTOL)
    assert np.all(out[:, 0] > cap)
    # ... the multiplicative one is exact below ω and equals e^ω above it
    np.testing.assert_allclose(out[:, 1], [0.75, 0.75], rtol=RTOL)
    np.testing.assert_allclose(out[0, 2], 4e6, rtol=RTOL)
    np.testing.assert_allclose(out[1, 2], cap, rtol=1e-6)


def test_nalu_all_options_together():
    """Separate weights, abs-input gate with bias, clamp log, exp clip."""
    rng = np.random.default_rng(11)
    layer = NALU(
        3,
        shared_weights=False,
        gate="abs_input",
        gate_bias=True,
        log_mode="clamp",
        exp_clip=60.0,
    )
    set_exact(
        built(layer),
        PATTERN,
        PATTERN_MUL,
        g=np.tile([1.0, -1.0, -1.0], (4, 1)),
        g_bias=[0.0, 0.0, 0.0],
    )
    x = inputs(rng, 1e4, signed=True)
    np.testing.assert_allclose(
        run(layer, x), mixed_reference(x, PATTERN, PATTERN_MUL), rtol=RTOL
    )


# -- higher-rank inputs ------------------------------------------------------
RANK_SHAPES = [(2, 5, 4), (2, 3, 5, 4)]


@pytest.mark.parametrize("shape", RANK_SHAPES)
def test_nac_higher_rank(shape):
    rng = np.random.default_rng(12)
    layer = set_exact(built(NAC(3)), PATTERN)
    x = inputs(rng, 1e4, shape=shape, signed=True)
    out = run(layer, x)
    assert out.shape == shape[:-1] + (3,)
    assert_sum_close(out, x, PATTERN, ref_sum(x, PATTERN))


@pytest.mark.parametrize("shape", RANK_SHAPES)
def test_mulnac_higher_rank(shape):
    rng = np.random.default_rng(13)
    layer = set_exact(built(MulNAC(3)), PATTERN)
    x = inputs(rng, 1e4, shape=shape, signed=True)
    out = run(layer, x)
    assert out.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(out, ref_prod(x, PATTERN), rtol=RTOL)


@pytest.mark.parametrize("shape", RANK_SHAPES)
@pytest.mark.parametrize("shared", [True, False])
def test_nalu_higher_rank(shape, shared):
    rng = np.random.default_rng(14)
    layer = NALU(3, shared_weights=shared)
    set_exact(
        built(layer), PATTERN, None if shared else PATTERN_MUL, g=G_MIXED
    )
    x = inputs(rng, 1e4, shape=shape)
    out = run(layer, x)
    assert out.shape == shape[:-1] + (3,)
    mul = PATTERN if shared else PATTERN_MUL
    np.testing.assert_allclose(out, mixed_reference(x, PATTERN, mul), rtol=RTOL)


@pytest.mark.parametrize("shape", RANK_SHAPES)
def test_layer_in_model_with_symbolic_higher_rank_input(shape):
    """compute_output_shape agrees with the eager output on rank 3 and 4."""
    layer = set_exact(built(NAC(3)), PATTERN)
    inp = keras.Input(shape[1:])
    out = layer(inp)
    assert tuple(out.shape) == (None,) + shape[1:-1] + (3,)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:-1] + (3,)
