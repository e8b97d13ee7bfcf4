"""Recurrent cells: ArithmeticCell, NACCell, NALUCell inside keras.layers.RNN.

A cell applies its unit to concat(x_t, h_{t-1}). With exact weights a NAC
cell is a running sum and a multiplicative cell a running product, for any
sequence length, which we check against numpy's cumsum / cumprod. The
initial state is the unit's neutral element (0 for additive units, 1 for
multiplicative ones) unless `initial_state_value` overrides it.
"""

import keras
import numpy as np
import pytest

from nalu_keras import NAC, NALU, ArithmeticCell, MulNAC, NACCell, NALUCell

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (get_weights, np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

SAT = 30.0


# -- helpers -----------------------------------------------------------------
def set_exact(unit, pattern, g=None):
    """Saturated Ŵ, M̂ realizing the {-1, 0, 1} `pattern` (rows: x_t then h)."""
    pattern = np.asarray(pattern, dtype="float32")
    assert tuple(unit.w_hat.shape) == pattern.shape
    unit.w_hat.assign(np.where(pattern < 0, -SAT, SAT))
    unit.m_hat.assign(np.where(pattern == 0, -SAT, SAT))
    if g is not None:
        unit.g.assign(np.asarray(g, dtype="float32"))


def make_rnn(cell, input_dim, return_sequences):
    rnn = keras.layers.RNN(cell, return_sequences=return_sequences)
    rnn.build((None, None, input_dim))
    assert cell.unit.built
    return rnn


def run(rnn, x):
    return keras.ops.convert_to_numpy(rnn(np.asarray(x, dtype="float32")))


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected) / np.abs(expected))


# -- running sums ------------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("length", [10, 100, 1000])
def test_nac_cell_running_sum(length, return_sequences):
    rng = np.random.default_rng(length)
    cell = NACCell(1)
    rnn = make_rnn(cell, input_dim=1, return_sequences=return_sequences)
    set_exact(cell.unit, [[1], [1]])  # h_t = x_t + h_{t-1}
    x = rng.uniform(1.0, 2.0, size=(4, length, 1))
    out = run(rnn, x)
    expected = np.cumsum(x, axis=1)
    if not return_sequences:
        expected = expected[:, -1]
    assert out.shape == expected.shape
    # float32 accumulation of positive terms: error grows at most ~ length·eps
    assert relative_error(out, expected) < 1e-7 * length + 1e-6


def test_nac_cell_several_units_and_features():
    """State 2, input 3: h1 += x0 - x2, h2 += x1 (rows: x0, x1, x2, h1, h2)."""
    rng = np.random.default_rng(0)
    cell = NACCell(2)
    rnn = make_rnn(cell, input_dim=3, return_sequences=True)
    assert tuple(cell.unit.w_hat.shape) == (3 + 2, 2)
    set_exact(cell.unit, [[1, 0], [0, 1], [-1, 0], [1, 0], [0, 1]])
    x = rng.uniform(1.0, 2.0, size=(3, 50, 3)) * 1e3  # large values, no problem
    out = run(rnn, x)
    expected = np.stack(
        [np.cumsum(x[..., 0] - x[..., 2], axis=1), np.cumsum(x[..., 1], axis=1)], axis=-1
    )
    scale = np.cumsum(np.abs(x).sum(-1), axis=1)[..., None]
    assert np.all(np.abs(out - expected) <= 1e-6 * scale)


def test_nac_cell_state_mixing_fibonacci():
    """h1' = h1 + h2, h2' = h1 with h0 = (1, 1) and zero input: Fibonacci."""
    cell = NACCell(2, initial_state_value=1.0)
    rnn = make_rnn(cell, input_dim=1, return_sequences=True)
    set_exact(cell.unit, [[0, 0], [1, 1], [1, 0]])
    out = run(rnn, np.zeros((1, 25, 1)))
    fib = [1, 1]
    for _ in range(27):
        fib.append(fib[-1] + fib[-2])
    expected = np.array([[fib[t + 2], fib[t + 1]] for t in range(25)], dtype=np.float64)
    np.testing.assert_array_equal(out[0], expected)  # integers < 2^24: exact


# -- running products ----------------------------------------------------------
@pytest.mark.parametrize("log_mode", ["add", "clamp"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("length", [10, 100, 1000])
def test_mulnac_cell_running_product(length, return_sequences, log_mode):
    rng = np.random.default_rng(length)
    cell = ArithmeticCell(MulNAC(1, log_mode=log_mode))
    assert cell.h0 == 1.0
    rnn = make_rnn(cell, input_dim=1, return_sequences=return_sequences)
    set_exact(cell.unit, [[1], [1]])  # h_t = x_t · h_{t-1}
    x = rng.uniform(0.9, 1.1, size=(4, length, 1))
    out = run(rnn, x)

    # The cell's recurrence in float64. With log(|v| + ε) every step
    # multiplies by (1 + ε/x)(1 + ε/h): over 1000 steps that bias reaches
    # ~1e-3 when h gets small, so the reference includes it; the clamp mode
    # is the exact product.
    eps = 1e-7 if log_mode == "add" else 0.0
    h, steps = np.ones((4, 1)), []
    for t in range(length):
        h = (x[:, t] + eps) * (h + eps)
        steps.append(h)
    reference = np.stack(steps, axis=1)
    if not return_sequences:
        reference = reference[:, -1]
    assert out.shape == reference.shape
    # In float32, |v| + 1e-7 rounds to |v| + 1.19e-7 for |v| ~ 1 (one ulp):
    # a further systematic ~2e-8 per factor and step in the "add" mode.
    tolerance = 1e-5 if log_mode == "clamp" else 1e-5 + 5e-8 * length
    assert relative_error(out, reference) < tolerance
    if log_mode == "clamp":
        exact = np.cumprod(x, axis=1) if return_sequences else np.prod(x, axis=1)
        assert relative_error(out, exact) < 1e-5


def test_mulnac_cell_running_quotient():
    """h_t = h_{t-1} / x_t, started from h0 = 1e6."""
    rng = np.random.default_rng(1)
    cell = ArithmeticCell(MulNAC(1), initial_state_value=1e6)
    rnn = make_rnn(cell, input_dim=1, return_sequences=True)
    set_exact(cell.unit, [[-1], [1]])
    x = rng.uniform(1.0, 2.0, size=(2, 12, 1))
    out = run(rnn, x)
    expected = 1e6 / np.cumprod(x, axis=1)
    assert relative_error(out, expected) < 1e-5


def test_default_initial_state_of_mulnac_cell_matters():
    """Started from 0 instead of 1, the running product would be ~ε·Πx."""
    rng = np.random.default_rng(2)
    x = rng.uniform(1.0, 2.0, size=(2, 5, 1))
    results = {}
    for h0 in (None, 0.0):
        cell = ArithmeticCell(MulNAC(1), initial_state_value=h0)
        rnn = make_rnn(cell, input_dim=1, return_sequences=False)
        set_exact(cell.unit, [[1], [1]])
        results[h0] = run(rnn, x)
    np.testing.assert_allclose(results[None], np.prod(x, axis=1), rtol=1e-5)
    # from h0 = 0 only the ε terms of log(|h| + ε) survive: ~1e-7·Πx
    assert np.all(results[0.0] < 1e-5 * np.prod(x, axis=1))


@pytest.mark.parametrize("log_mode", ["add", "clamp"])
def test_nalu_cell_running_product_and_sum(log_mode):
    """A NALUCell whose (independent) gate picks the product for unit 0
    and the sum for unit 1: rows x, h1, h2; h1' = x·h1, h2' = x + h2."""
    rng = np.random.default_rng(3)
    cell = NALUCell(
        2,
        gate="independent",
        shared_weights=False,
        log_mode=log_mode,
        initial_state_value=1.0,
    )
    rnn = make_rnn(cell, input_dim=1, return_sequences=True)
    unit = cell.unit
    set_exact(unit, [[0, 1], [0, 0], [0, 1]], g=[-200.0, 200.0])  # additive W
    unit.w_hat_mul.assign(np.full((3, 2), SAT))
    unit.m_hat_mul.assign(np.where(np.array([[1, 0], [1, 0], [0, 0]]) == 1, SAT, -SAT))
    x = rng.uniform(0.5, 1.5, size=(2, 30, 1))
    out = run(rnn, x)
    np.testing.assert_allclose(out[..., 0], np.cumprod(x[..., 0], axis=1), rtol=2e-5)
    np.testing.assert_allclose(out[..., 1], 1.0 + np.cumsum(x[..., 0], axis=1), rtol=1e-5)


# -- initial state ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make_cell, expected",
    [
        (lambda: ArithmeticCell(NAC(2)), 0.0),
        (lambda: ArithmeticCell(MulNAC(2)), 1.0),
        (lambda: ArithmeticCell(NALU(2)), 0.0),
        (lambda: NACCell(2), 0.0),
        (lambda: NALUCell(2), 0.0),
        (lambda: ArithmeticCell(NAC(2), initial_state_value=3), 3.0),
        (lambda: ArithmeticCell(MulNAC(2), initial_state_value=0.0), 0.0),
        (lambda: ArithmeticCell(NALU(2), initial_state_value=-1.5), -1.5),
        (lambda: NACCell(2, initial_state_value=7.0), 7.0),
        (lambda: NALUCell(2, initial_state_value=1.0), 1.0),
    ],
    ids=[
        "Cell(NAC)", "Cell(MulNAC)", "Cell(NALU)", "NACCell", "NALUCell",
        "Cell(NAC)-3", "Cell(MulNAC)-0", "Cell(NALU)--1.5", "NACCell-7", "NALUCell-1",
    ],
)
def test_initial_state_values(make_cell, expected):
    cell = make_cell()
    assert cell.h0 == expected and isinstance(cell.h0, float)
    state = cell.get_initial_state(batch_size=4)
    assert len(state) == 1
    state = keras.ops.convert_to_numpy(state[0])
    assert state.shape == (4, 2)
    assert state.dtype == np.float32
    np.testing.assert_array_equal(state, np.full((4, 2), expected))


def test_nac_cell_initial_state_offsets_the_sum():
    cell = NACCell(1, initial_state_value=5.0)
    rnn = make_rnn(cell, input_dim=1, return_sequences=True)
    set_exact(cell.unit, [[1], [1]])
    x = np.arange(1.0, 7.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(run(rnn, x)[0, :, 0], 5.0 + np.cumsum(x[0, :, 0]))


def test_explicit_initial_state_overrides_h0():
    """An initial_state passed to the RNN wins over the cell's h0."""
    cell = ArithmeticCell(MulNAC(1))
    rnn = make_rnn(cell, input_dim=1, return_sequences=False)
    set_exact(cell.unit, [[1], [1]])
    x = np.full((2, 3, 1), 2.0, dtype="float32")
    h0 = np.array([[3.0], [0.5]], dtype="float32")
    out = keras.ops.convert_to_numpy(rnn(x, initial_state=[h0]))
    np.testing.assert_allclose(out, [[24.0], [4.0]], rtol=1e-5)


# -- options, sizes ------------------------------------------------------------
def test_nalu_cell_options_pass_through_to_the_unit():
    reg = keras.regularizers.L2(0.01)
    cell = NALUCell(
        3,
        shared_weights=False,
        gate="abs_input",
        gate_bias=True,
        epsilon=1e-5,
        log_mode="clamp",
        exp_clip=12.0,
        g_initializer="zeros",
        g_bias_initializer="ones",
        w_hat_regularizer=reg,
        name="my_cell",
    )
    unit = cell.unit
    assert isinstance(unit, NALU)
    assert cell.name == "my_cell"
    assert unit.units == 3
    assert unit.shared_weights is False and unit.gate == "abs_input"
    assert unit.gate_bias is True and unit.epsilon == 1e-5
    assert unit.log_mode == "clamp" and unit.exp_clip == 12.0
    make_rnn(cell, input_dim=2, return_sequences=False)
    names = sorted(v.name for v in unit.weights)
    assert names == sorted(["w_hat", "m_hat", "w_hat_mul", "m_hat_mul", "g", "g_bias"])
    assert tuple(unit.g.shape) == (2 + 3, 3)
    np.testing.assert_array_equal(np.asarray(unit.g), 0.0)
    np.testing.assert_array_equal(np.asarray(unit.g_bias), 1.0)
    assert unit.w_hat.regularizer is not None


def test_nalu_cell_invalid_option_is_rejected():
    with pytest.raises(ValueError, match="gate"):
        NALUCell(2, gate="foo")
    with pytest.raises(ValueError, match="gate_bias"):
        NALUCell(2, gate="independent", gate_bias=True)


def test_nac_cell_options_pass_through_to_the_unit():
    cell = NACCell(2, w_hat_initializer="ones", m_hat_initializer="zeros")
    make_rnn(cell, input_dim=1, return_sequences=False)
    np.testing.assert_array_equal(np.asarray(cell.unit.w_hat), 1.0)
    np.testing.assert_array_equal(np.asarray(cell.unit.m_hat), 0.0)


def test_cell_dtype_is_passed_to_the_unit():
    cell = NALUCell(2, dtype="float16")
    assert cell.dtype_policy.name == "float16"
    assert cell.unit.dtype_policy.name == "float16"


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda u: NACCell(u),
        lambda u: NALUCell(u),
        lambda u: ArithmeticCell(NAC(u)),
        lambda u: ArithmeticCell(MulNAC(u)),
        lambda u: ArithmeticCell(NALU(u, gate="independent")),
    ],
    ids=["NACCell", "NALUCell", "Cell(NAC)", "Cell(MulNAC)", "Cell(NALU)"],
)
@pytest.mark.parametrize("units", [1, 4])
def test_state_and_output_sizes(make_cell, units):
    cell = make_cell(units)
    assert cell.state_size == units and cell.output_size == units
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(2, 6, 3)).astype("float32")
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    seq, state = rnn(x)
    assert tuple(seq.shape) == (2, 6, units) and tuple(state.shape) == (2, units)
    # the output at the last step is the final state (up to XLA fusion ulps)
    np.testing.assert_allclose(np.asarray(seq)[:, -1], np.asarray(state), rtol=1e-6)
    assert tuple(cell.unit.w_hat.shape) == (3 + units, units)


def test_cell_in_symbolic_model_shapes():
    inputs = keras.Input((None, 3))  # variable length
    seq = keras.layers.RNN(NALUCell(2), return_sequences=True)(inputs)
    last = keras.layers.RNN(NACCell(4))(inputs)
    assert tuple(seq.shape) == (None, None, 2)
    assert tuple(last.shape) == (None, 4)


def test_cell_weights_are_tracked_and_trainable():
    cell = NALUCell(2, shared_weights=False)
    rnn = make_rnn(cell, input_dim=1, return_sequences=False)
    assert len(rnn.trainable_weights) == 5  # w_hat, m_hat, w_hat_mul, m_hat_mul, g
    assert {id(v) for v in rnn.trainable_weights} == {id(v) for v in cell.unit.weights}


@pytest.mark.parametrize(
    "make_cell",
    [lambda: NACCell(1, trainable=False), lambda: ArithmeticCell(NAC(1), trainable=False)],
    ids=["NACCell", "ArithmeticCell"],
)
def test_non_trainable_cell_has_no_trainable_weights(make_cell):
    """trainable=False on the cell must freeze the unit it wraps, also in fit."""
    cell = make_cell()
    assert cell.trainable is False
    rnn = make_rnn(cell, input_dim=1, return_sequences=False)
    assert rnn.trainable_weights == []
    assert len(rnn.non_trainable_weights) == 2
    inputs = keras.Input((4, 1))
    model = keras.Model(inputs, rnn(inputs))
    model.compile(optimizer="sgd", loss="mse")
    before = [np.array(w) for w in model.get_weights()]
    model.fit(np.ones((8, 4, 1)), np.zeros((8, 1)), epochs=1, verbose=0)
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
