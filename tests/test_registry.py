"""The unit registry, and reading learned units: sparsity error, rounded
weights and formulas from hand-set weights."""

import importlib.util

import keras
import numpy as np
import pytest

from nalu_keras.cells import ArithmeticCell
from nalu_keras.lab.evaluation import sparsity_error
from nalu_keras.layers.base import ArithmeticUnit, RoundedWeights
from nalu_keras.layers.golden import GNALU
from nalu_keras.layers.inalu import iNALU
from nalu_keras.layers.nac import NAC, MulNAC
from nalu_keras.layers.nalu import NALU
from nalu_keras.layers.nau_nmu import NMU, GatedNAUNMU
from nalu_keras.layers.npu import NPU, NaiveNPU, RealNaiveNPU, RealNPU
from nalu_keras.registry import available_units, get_unit

# name -> (module of nalu_keras.layers, class name)
EXPECTED = {
    "NAC+": ("nac", "NAC"),
    "NAC": ("nac", "NAC"),
    "NAC*": ("nac", "MulNAC"),
    "NAC•": ("nac", "MulNAC"),
    "MulNAC": ("nac", "MulNAC"),
    "NALU": ("nalu", "NALU"),
    "NAU": ("nau_nmu", "NAU"),
    "NMU": ("nau_nmu", "NMU"),
    "GatedNAUNMU": ("nau_nmu", "GatedNAUNMU"),
    "NAC•,σ": ("golden", "SigmoidMulNAC"),
    "NAC*,σ": ("golden", "SigmoidMulNAC"),
    "SigmoidMulNAC": ("golden", "SigmoidMulNAC"),
    "NAC•,NMU": ("bounded_mul", "BoundedMulNAC"),
    "NAC*,NMU": ("bounded_mul", "BoundedMulNAC"),
    "BoundedMulNAC": ("bounded_mul", "BoundedMulNAC"),
    "iNALU": ("inalu", "iNALU"),
    "NPU": ("npu", "NPU"),
    "RealNPU": ("npu", "RealNPU"),
    "NaiveNPU": ("npu", "NaiveNPU"),
    "RealNaiveNPU": ("npu", "RealNaiveNPU"),
    "G-NALU": ("golden", "GNALU"),
    "GNALU": ("golden", "GNALU"),
}


def require_module(module):
    """Skip while a unit module written elsewhere does not exist yet."""
    if importlib.util.find_spec(f"nalu_keras.layers.{module}") is None:
        pytest.skip(f"nalu_keras.layers.{module} does not exist yet")


# -- registry -----------------------------------------------------------------------
def test_available_units_lists_every_name():
    assert available_units() == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_name_gives_its_class(name):
    module, class_name = EXPECTED[name]
    require_module(module)
    cls = get_unit(name)
    assert cls.__name__ == class_name
    assert cls.__module__ == f"nalu_keras.layers.{module}"
    assert issubclass(cls, ArithmeticUnit)
    assert get_unit(name.lower()) is cls and get_unit(name.upper()) is cls
    assert get_unit(f"  {name} ") is cls


def test_known_classes_and_case_insensitivity():
    assert get_unit("NAC+") is NAC and get_unit("nac") is NAC
    assert get_unit("nac*") is MulNAC and get_unit("mulnac") is MulNAC
    assert get_unit("nalu") is NALU and get_unit("INALU") is iNALU
    assert get_unit("realnpu") is RealNPU and get_unit("Realnaivenpu") is RealNaiveNPU
    assert get_unit("npu") is NPU and get_unit("naivenpu") is NaiveNPU
    assert get_unit(RealNPU) is RealNPU  # a class passes through
    layer = get_unit("NPU")(units=2)
    assert isinstance(layer, NPU) and layer.units == 2


@pytest.mark.parametrize("bad", ["NAC-", "nalu2", "", "NA C+x", 3, None, keras.layers.Dense])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        get_unit(bad)
    message = str(info.value)
    assert "Unknown arithmetic unit" in message
    for name in EXPECTED:
        assert name in message


# -- sparsity error -------------------------------------------------------------------
def real_naive(w):
    layer = RealNaiveNPU(np.shape(w)[1])
    layer.build((None, np.shape(w)[0]))
    layer.w_re.assign(np.asarray(w, "float32"))
    return layer


def test_sparsity_error_of_hand_set_weights():
    assert sparsity_error(real_naive([[1.0], [-1.0], [0.0]])) == 0.0
    np.testing.assert_allclose(sparsity_error(real_naive([[1.0], [-0.97], [0.02]])), 0.03, rtol=1e-5)
    np.testing.assert_allclose(sparsity_error(real_naive([[0.5], [1.0]])), 0.5)
    # |w| > 1 counts by its distance to ±1.
    np.testing.assert_allclose(sparsity_error(real_naive([[1.2], [-2.0]])), 1.0, rtol=1e-6)


def test_sparsity_error_excludes_gates_and_includes_imaginary_weights():
    layer = NPU(2)
    layer.build((None, 2))
    layer.w_re.assign([[1.0, 0.0], [-1.0, 1.0]])
    layer.w_im.assign([[0.0, 0.1], [0.0, 0.0]])
    layer.g.assign([0.5, 0.7])  # a gate of 0.5 is as far as possible, but not counted
    assert set(layer.arithmetic_weights()) == {"W_re", "W_im"}
    np.testing.assert_allclose(sparsity_error(layer), 0.1, rtol=1e-6)


def test_sparsity_error_is_the_max_over_the_units_of_a_model():
    inputs = keras.Input((3,))
    first = real_naive([[1.0, 0.0], [0.0, 0.96], [-1.0, 0.0]])
    second = real_naive([[1.0], [0.99]])
    model = keras.Model(inputs, second(first(inputs)))
    np.testing.assert_allclose(sparsity_error(model), 0.04, rtol=1e-5)
    np.testing.assert_allclose(sparsity_error([second]), 0.01, rtol=1e-4)


def test_sparsity_error_finds_units_inside_recurrent_cells():
    cell = ArithmeticCell(RealNaiveNPU(1))
    rnn = keras.layers.RNN(cell)
    rnn.build((None, 4, 1))
    cell.unit.w_re.assign([[0.8], [1.0]])
    model = keras.Sequential([keras.Input((4, 1)), rnn])
    assert ArithmeticUnit.instances_in(model) == [cell.unit]
    np.testing.assert_allclose(sparsity_error(model), 0.2, rtol=1e-5)


def test_sparsity_error_needs_a_built_unit():
    with pytest.raises(ValueError, match="No built arithmetic unit"):
        sparsity_error(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="No built arithmetic unit"):
        sparsity_error(NPU(1))


# -- rounded weights and formulas ---------------------------------------------------------
def saturated_inalu(w_add, w_mul, gate):
    layer = iNALU(np.shape(w_add)[1])
    layer.build((None, np.shape(w_add)[0]))
    for w_hat, m_hat, w in [
        (layer.w_hat, layer.m_hat, w_add),
        (layer.w_hat_mul, layer.m_hat_mul, w_mul),
    ]:
        w = np.asarray(w, np.float64)
        w_hat.assign(np.where(w < 0, -30.0, 30.0).astype("float32"))
        m_hat.assign(np.where(w == 0, -30.0, 30.0).astype("float32"))
    layer.g.assign(np.full(np.shape(w_add)[1], gate, "float32"))
    return layer


def test_rounded_weights_report_the_deviation():
    layer = real_naive([[0.98, 0.0], [-1.03, 0.6], [0.01, -0.2]])
    rounded = layer.rounded_weights()
    assert isinstance(rounded, RoundedWeights)
    np.testing.assert_array_equal(rounded.weights["W_re"], [[1, 0], [-1, 1], [0, 0]])
    np.testing.assert_allclose(rounded.deviation["W_re"], 0.4, rtol=1e-6)
    np.testing.assert_allclose(rounded.max_deviation, 0.4, rtol=1e-6)
    with pytest.raises(ValueError, match="'W_re'.*tolerance=0.1"):
        layer.rounded_weights(tolerance=0.1)
    exact = real_naive([[1.0], [-1.0]])
    assert exact.rounded_weights(tolerance=0.0).max_deviation == 0.0
    with pytest.raises(ValueError, match="tolerance"):
        exact.rounded_weights(tolerance=-1)


def test_rounded_weights_of_a_gated_unit_include_the_gate():
    layer = saturated_inalu([[1], [0], [-1]], [[1], [1], [0]], gate=-30.0)
    rounded = layer.rounded_weights(tolerance=1e-6)
    assert set(rounded.weights) == {"W", "W_mul", "gate"}
    np.testing.assert_array_equal(rounded.weights["W"][:, 0], [1, 0, -1])
    np.testing.assert_array_equal(rounded.weights["W_mul"][:, 0], [1, 1, 0])
    np.testing.assert_array_equal(rounded.weights["gate"], [0])


def test_formulas_of_additive_and_multiplicative_units():
    mul = real_naive([[1.0, 2.0, -1.0, 0.0], [1.0, 0.5, -1.0, 0.0], [-1.0, 0.0, 0.0, 0.0],
                      [0.0, -1.0, 0.02, 0.0]])
    assert mul.arithmetic_kind == "multiplicative"
    assert mul.formula().splitlines() == [
        "y0 = x0 * x1 / x2",
        "y1 = x0^2 * x1^0.5 / x3",
        "y2 = 1 / (x0 * x1)",
        "y3 = 1",
    ]
    assert mul.formula(input_names="abcd", output_names=["p", "q", "r", "s"]).splitlines()[0] == (
        "p = a * b / c"
    )
    # The additive NAC (kind derived from its initial state 0).
    nac = NAC(2)
    nac.build((None, 6))
    pattern = np.zeros((6, 2))
    pattern[[0, 3], 0], pattern[5, 0] = 1, -1
    pattern[1, 1] = -1
    nac.w_hat.assign(np.where(pattern < 0, -30.0, 30.0).astype("float32"))
    nac.m_hat.assign(np.where(pattern == 0, -30.0, 30.0).astype("float32"))
    assert nac.arithmetic_kind == "additive" and MulNAC(1).arithmetic_kind == "multiplicative"
    assert nac.formula().splitlines() == ["y0 = x0 + x3 - x5", "y1 = -x1"]
    with pytest.raises(ValueError, match="input_names"):
        nac.formula(input_names=["a", "b"])


def test_formula_of_a_gated_unit_follows_its_gate():
    w_add, w_mul = [[1], [1], [-1]], [[1], [0], [-1]]
    assert saturated_inalu(w_add, w_mul, gate=30.0).formula() == "y0 = x0 + x1 - x2"
    assert saturated_inalu(w_add, w_mul, gate=-30.0).formula() == "y0 = x0 / x2"
    assert saturated_inalu(w_add, w_mul, gate=0.0).formula() == (
        "y0 = 0.5*(x0 + x1 - x2) + 0.5*(x0 / x2)"
    )


def test_formula_of_an_npu_skips_inputs_with_a_closed_gate():
    layer = NPU(1)
    layer.build((None, 3))
    layer.w_re.assign([[0.5], [-1.0], [1.0]])
    layer.g.assign([1.0, 0.9, 0.1])
    assert layer.formula() == "y0 = x0^0.5 / x1"


# -- formulas of NALU, G-NALU, the gated NAU/NMU and the NMU ---------------------------------
GATED_ADD = np.array([[1, 1], [1, 0], [0, -1]], np.float64)  # x0 + x1, x0 - x2
GATED_MUL = np.array([[1, 1], [1, 0], [0, 1]], np.float64)  # NMU: x0 * x1, x0 * x2


def saturated_nalu(cls, pattern, sat=30.0, **kwargs):
    layer = cls(np.shape(pattern)[1], **kwargs)
    layer.build((None, np.shape(pattern)[0]))
    pattern = np.asarray(pattern, np.float64)
    layer.w_hat.assign(np.where(pattern < 0, -sat, sat).astype("float32"))
    layer.m_hat.assign(np.where(pattern == 0, -sat, sat).astype("float32"))
    return layer


@pytest.mark.parametrize("cls", [NALU, GNALU])
def test_nalu_and_gnalu_are_gated_units(cls):
    assert cls(1).arithmetic_kind == "gated"
    assert GatedNAUNMU(1).arithmetic_kind == "gated"


def test_formula_of_a_nalu_with_an_input_dependent_gate_names_it():
    layer = saturated_nalu(NALU, GATED_ADD)
    assert layer.formula().splitlines() == [
        "y0 = g0*(x0 + x1) + (1 - g0)*(x0 * x1), with input-dependent gate g0 = σ(x @ G[:, 0])",
        "y1 = g1*(x0 - x2) + (1 - g1)*(x0 / x2), with input-dependent gate g1 = σ(x @ G[:, 1])",
    ]
    biased = saturated_nalu(NALU, GATED_ADD[:, :1], gate="abs_input", gate_bias=True)
    assert biased.formula(input_names="abc") == (
        "y0 = g0*(a + b) + (1 - g0)*(a * b), with input-dependent gate g0 = σ(|x| @ G[:, 0] + b[0])"
    )


def test_formula_of_a_nalu_with_an_independent_gate():
    layer = saturated_nalu(NALU, GATED_ADD, gate="independent")
    # saturated gates: only the selected path; the second output is mixed
    layer.g.assign([30.0, np.log(0.7 / 0.3)])  # σ = 1, 0.7
    assert layer.formula().splitlines() == [
        "y0 = x0 + x1",
        "y1 = 0.7*(x0 - x2) + 0.3*(x0 / x2)",
    ]
    layer.g.assign([-30.0, -30.0])
    assert layer.formula().splitlines() == ["y0 = x0 * x1", "y1 = x0 / x2"]
    # within `tolerance` of 1 counts as saturated: σ(3.5) ≈ 0.97
    layer.g.assign([3.5, 0.0])
    assert layer.formula().splitlines() == ["y0 = x0 + x1", "y1 = 0.5*(x0 - x2) + 0.5*(x0 / x2)"]
    assert layer.formula(tolerance=0.01).splitlines()[0] == "y0 = 0.971*(x0 + x1) + 0.0293*(x0 * x1)"
    rounded = layer.rounded_weights()
    assert set(rounded.weights) == {"W", "gate"}
    np.testing.assert_array_equal(rounded.weights["gate"], [1.0, 0.0])  # σ(0) = 0.5 rounds to 0


def test_formula_of_a_nalu_with_separate_weights():
    layer = saturated_nalu(NALU, GATED_ADD[:, :1], shared_weights=False, gate="independent")
    mul = np.array([[1.0], [-1.0], [1.0]])
    layer.w_hat_mul.assign(np.where(mul < 0, -30.0, 30.0).astype("float32"))
    layer.m_hat_mul.assign(np.full((3, 1), 30.0, "float32"))
    layer.g.assign([0.0])
    assert layer.formula() == "y0 = 0.5*(x0 + x1) + 0.5*(x0 * x2 / x1)"


def test_formula_of_a_gnalu_uses_the_golden_gate():
    layer = saturated_nalu(GNALU, GATED_ADD, sat=200.0, gate="independent")
    layer.g.assign([200.0, 1.0])  # σ_φ(200) = 1; σ_φ(1) = 1/φ ≈ 0.618
    assert layer.formula().splitlines() == [
        "y0 = x0 + x1",
        "y1 = 0.618*(x0 - x2) + 0.382*(x0 / x2)",
    ]
    by_input = saturated_nalu(GNALU, GATED_ADD[:, :1], sat=200.0)
    assert by_input.formula().endswith("g0 = σ_φ(x @ G[:, 0])")


def gated_nau_nmu(**kwargs):
    layer = GatedNAUNMU(2, **kwargs)
    layer.build((None, 3))
    layer.w_nau.assign(GATED_ADD.astype("float32"))
    layer.w_nmu.assign(GATED_MUL.astype("float32"))
    return layer


def test_formula_of_the_gated_nau_nmu():
    layer = gated_nau_nmu(gate="independent")
    layer.g.assign([200.0, -200.0])
    assert layer.formula().splitlines() == ["y0 = x0 + x1", "y1 = x0 * x2"]
    layer.g.assign([0.0, -200.0])
    layer.w_nmu.assign([[1.0, 0.7], [1.0, 0.0], [0.0, 1.0]])
    assert layer.formula().splitlines() == [
        "y0 = 0.5*(x0 + x1) + 0.5*(x0 * x1)",
        "y1 = (0.7*x0 + 0.3) * x2",
    ]
    by_input = gated_nau_nmu(gate_bias=True)
    assert by_input.formula().splitlines()[1] == (
        "y1 = g1*(x0 - x2) + (1 - g1)*(x0 * x2), with input-dependent gate g1 = σ(x @ G[:, 1] + b[1])"
    )


def test_formula_of_an_nmu_is_a_product_of_factors_not_powers():
    layer = NMU(3)
    layer.build((None, 3))
    layer.w.assign([[1.0, 0.7, 0.0], [1.0, 0.98, 0.0], [0.0, 0.25, 0.0]])
    assert layer.arithmetic_kind == "multiplicative"
    assert layer.formula().splitlines() == [
        "y0 = x0 * x1",
        "y1 = (0.7*x0 + 0.3) * x1 * (0.25*x2 + 0.75)",
        "y2 = 1",
    ]
    # What the line says is what the NMU computes.
    x = np.array([[-2.0, 3.0, 5.0]], "float32")
    y = keras.ops.convert_to_numpy(layer(x))[0]
    np.testing.assert_allclose(y[:2], [-6.0, (0.7 * -2 + 0.3) * (0.98 * 3 + 0.02) * 2.0], rtol=1e-5)
    # Weights outside [0, 1] (no projection) are written as the factor too.
    free = NMU(1, weight_bounds="none")
    free.build((None, 2))
    free.w.assign([[1.5], [-1.0]])
    assert free.formula() == "y0 = (1.5*x0 - 0.5) * (-x1 + 2)"
