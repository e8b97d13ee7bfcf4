"""Property-based fuzz of every unit: adversarial finite inputs never give NaN.

For every unit of `nalu_keras.available_units()` (and, for the gated units,
the input-independent gate too, so the gate is exactly 0 or 1), in float32
and in float64, hypothesis draws

* inputs from zeros (±0), signs, small integers, ±1e±30 (float64: ±1e±300
  too) and ordinary floats, and rows whose running products overflow before
  a zero or a tiny factor ([1e30, 1e30, 0, 1], [1e30, 1e30, 1e-30, 1e-30],
  ...) in every order;
* weights saturated both ways (±30 for tanh / σ pre-activations, ±100 for
  independent gates, the bounds of NAU / NMU weights, integer NPU exponents,
  closed and open NPU gates) or anywhere in their usual range.

The unit's formula (UNITS.md and the layer docstrings) is re-computed in
numpy long double from the same weights. The properties, per output y_j:

* y_j is never NaN where the long-double reference is a number;
* where the reference, rounded to the layer's dtype, is finite, the
  gradients of y_j w.r.t. every weight and every input contain no NaN
  (±inf, or a large finite value, is accepted where the true gradient
  overflows the dtype).

Where the reference itself overflows the dtype the output may be ±inf (its
gradients are then not checked). An infinite output where the reference is
finite ("spurious inf", e.g. an intermediate of a product overflowing) is
counted but not a failure.

Each layer is built and its output-and-Jacobian function compiled once per
dtype; the examples only feed new weights and inputs. The runs are
deterministic (`derandomize=True`).

Counting mode: with the environment variable `NALU_FUZZ_STATS=<file>`, the
properties are recorded instead of asserted and one JSON line per unit and
dtype is appended to <file> (examples, NaN outputs, examples with NaN
gradients, spurious infs, and the first three examples with a problem).
"""

from __future__ import annotations

import contextlib
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nalu_keras
from nalu_keras import get_unit

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

IN_DIM, UNITS = 4, 2
MAX_EXAMPLES = 80
DTYPES = ("float32", "float64")
STATS_FILE = os.environ.get("NALU_FUZZ_STATS")

#: (registry name, constructor options). Every name of `available_units()`
#: resolves to one of these classes (checked below); the gated units also run
#: with the input-independent gate, which can be exactly 0 or 1.
CASES = [
    ("NAC+", {}),
    ("NAC*", {}),
    ("NALU", {}),
    ("NALU", {"gate": "independent"}),
    ("NAU", {}),
    ("NMU", {}),
    ("GatedNAUNMU", {}),
    ("GatedNAUNMU", {"gate": "independent"}),
    ("NAC•,σ", {}),
    ("NAC•,NMU", {}),
    ("iNALU", {}),
    ("NPU", {}),
    ("RealNPU", {}),
    ("NaiveNPU", {}),
    ("RealNaiveNPU", {}),
    ("G-NALU", {}),
    ("G-NALU", {"gate": "independent"}),
]


def _case_id(case):
    name, options = case
    return name + "".join(f"-{v}" for v in options.values())


def test_every_available_unit_is_fuzzed():
    fuzzed = {get_unit(name) for name, _ in CASES}
    assert {get_unit(name) for name in nalu_keras.available_units()} <= fuzzed


# -- strategies ----------------------------------------------------------------
def _mixed(specials, low, high, width):
    """Special values (saturation, bounds, integers) or any float in range."""
    return st.one_of(
        st.sampled_from(specials),
        st.floats(low, high, width=width, allow_nan=False, allow_infinity=False),
    )


_HAT = ([-30.0, 30.0, 0.0], -30.0, 30.0)  # tanh / σ pre-activations
_GATE_VECTOR = ([-100.0, 100.0, -30.0, 30.0, 0.0], -100.0, 100.0)
_NAU_W = ([-1.0, 0.0, 1.0], -1.0, 1.0)
_NMU_W = ([0.0, 1.0], 0.0, 1.0)
_EXPONENT = ([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.5, -0.5], -4.0, 4.0)
_NPU_GATE = ([0.0, 1.0, 0.5, -0.5, 1.5], -1.0, 2.0)


def _weight_elements(cls_name, var_name, options):
    if var_name == "w_nmu" or (cls_name in ("NMU", "BoundedMulNAC") and var_name == "w"):
        return _NMU_W
    if var_name == "w_nau" or (cls_name == "NAU" and var_name == "w"):
        return _NAU_W
    if var_name in ("w_re", "w_im"):
        return _EXPONENT
    if var_name == "g":
        if cls_name in ("NPU", "RealNPU"):
            return _NPU_GATE
        if cls_name == "iNALU" or options.get("gate") == "independent":
            return _GATE_VECTOR
        return _HAT
    return _HAT  # w_hat, m_hat, w_hat_mul, m_hat_mul


_INPUT_SPECIALS = [0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 0.5, 1e30, -1e30, 1e-30, -1e-30]
_EXTREMES = [0.0, -0.0, 1e30, -1e30, 1e-30, -1e-30]
_EXTREMES_64 = _EXTREMES + [1e300, -1e300, 1e-300, -1e-300]
_HUGE_OR_ZERO = [0.0, 1e30, -1e30]
_HUGE_OR_ZERO_64 = _HUGE_OR_ZERO + [1e300, -1e300]


def _array(dtype, shape, specials, low, high, width):
    """An array of one special value, of special values, or of mixed values."""
    constant = st.sampled_from(specials).map(lambda v: np.full(shape, v, dtype=dtype))
    return st.one_of(
        constant,
        constant,
        hnp.arrays(dtype, shape, elements=st.sampled_from(specials)),
        hnp.arrays(dtype, shape, elements=_mixed(specials, low, high, width)),
    )


def _patterns(width):
    """Rows whose running products overflow before a zero or a tiny factor,
    in every order (`st.permutations`): [b, b, 0, ·], [b, b, 1/b, 1/b], ..."""
    rows = []
    for big in [1e30] if width == 32 else [1e30, 1e300]:
        tiny = 1.0 / big
        rows += [
            [big, big, 0.0, 1.0],
            [big, -big, big, 0.0],
            [big, big, tiny, tiny],
            [-big, big, 0.0, -0.0],
            [big, big, big, tiny],
        ]
    return rows


def _example_strategy(unit):
    width = 32 if unit.dtype == "float32" else 64
    extremes = _EXTREMES if width == 32 else _EXTREMES_64
    huge_or_zero = _HUGE_OR_ZERO if width == 32 else _HUGE_OR_ZERO_64
    shape = (1, IN_DIM)
    patterned = (
        st.sampled_from(_patterns(width))
        .flatmap(st.permutations)
        .map(lambda row: np.array([row], dtype=unit.dtype))
    )
    x = st.one_of(
        patterned,
        hnp.arrays(unit.dtype, shape, elements=st.sampled_from(huge_or_zero)),
        hnp.arrays(unit.dtype, shape, elements=st.sampled_from(extremes)),
        hnp.arrays(unit.dtype, shape, elements=st.sampled_from(_INPUT_SPECIALS + extremes)),
        hnp.arrays(unit.dtype, shape, elements=_mixed(_INPUT_SPECIALS + extremes, -10.0, 10.0, width)),
    )
    weights = [
        _array(
            unit.dtype,
            tuple(v.shape),
            *_weight_elements(unit.cls_name, v.name, unit.options),
            width,
        )
        for v in unit.layer.trainable_variables
    ]
    return st.tuples(x, st.tuples(*weights))


# -- the formulas in long double -------------------------------------------------
LD = np.longdouble
LN_PHI = LD(math.log((1.0 + math.sqrt(5.0)) / 2.0))


def _sigmoid(u):
    return LD(1) / (LD(1) + np.exp(-u))


def _nac_weight(w_hat, m_hat, golden=False):
    if golden:
        return np.tanh(w_hat * LN_PHI) * _sigmoid(m_hat * LN_PHI)
    return np.tanh(w_hat) * _sigmoid(m_hat)


def _log_abs(x, eps, log_mode):
    if log_mode == "clamp":
        return np.log(np.maximum(np.abs(x), LD(eps)))
    return np.log(np.abs(x) + LD(eps))


def _nmu(x, w):
    return np.prod(x[..., :, None] * w + (LD(1) - w), axis=-2)


def _gate(layer, w, x, golden=False):
    squash = (lambda u: _sigmoid(u * LN_PHI)) if golden else _sigmoid
    if layer.gate == "independent":
        return squash(w["g"])
    source = np.abs(x) if layer.gate == "abs_input" else x
    logits = source @ w["g"]
    if layer.gate_bias:
        logits = logits + w["g_bias"]
    return squash(logits)


def reference(layer, w, x):
    """The unit's formula in long double; `w` maps weight names to arrays."""
    name = type(layer).__name__
    if name == "NAC":
        return x @ _nac_weight(w["w_hat"], w["m_hat"])
    if name == "NAU":
        return x @ w["w"]
    if name == "NMU":
        return _nmu(x, w["w"])
    if name in ("MulNAC", "SigmoidMulNAC", "BoundedMulNAC"):
        if name == "BoundedMulNAC":
            weight = w["w"]
        elif name == "SigmoidMulNAC":
            weight = _sigmoid(w["w_hat"])
        else:
            weight = _nac_weight(w["w_hat"], w["m_hat"])
        z = _log_abs(x, layer.epsilon, layer.log_mode) @ weight
        if layer.exp_clip is not None:
            z = np.minimum(z, LD(layer.exp_clip))
        return np.exp(z)
    if name in ("NALU", "GNALU"):
        golden = name == "GNALU"
        w_add = _nac_weight(w["w_hat"], w["m_hat"], golden)
        w_mul = w_add if layer.shared_weights else _nac_weight(w["w_hat_mul"], w["m_hat_mul"], golden)
        z = _log_abs(x, layer.epsilon, layer.log_mode) @ w_mul
        if layer.exp_clip is not None:
            z = np.minimum(z, LD(layer.exp_clip))
        g = _gate(layer, w, x, golden)
        return g * (x @ w_add) + (LD(1) - g) * np.exp(z)
    if name == "GatedNAUNMU":
        g = _gate(layer, w, x)
        return g * (x @ w["w_nau"]) + (LD(1) - g) * _nmu(x, w["w_nmu"])
    if name == "iNALU":
        w_add = _nac_weight(w["w_hat"], w["m_hat"])
        w_mul = w_add if layer.shared_weights else _nac_weight(w["w_hat_mul"], w["m_hat_mul"])
        z = _log_abs(x, layer.epsilon, "clamp") @ w_mul
        if layer.exp_clip is not None:
            z = np.minimum(z, LD(layer.exp_clip))
        s = np.clip(_nmu(np.sign(x), np.abs(w_mul)), -1, 1)
        g = _sigmoid(w["g"])
        return g * (x @ w_add) + (LD(1) - g) * np.exp(z) * s
    if name in ("NPU", "RealNPU", "NaiveNPU", "RealNaiveNPU"):
        eps = LD(layer.epsilon_value)
        magnitude = np.abs(x) + eps
        k = (x < 0).astype(LD) * LD(math.pi)
        if layer.GATED:
            gate = np.clip(w["g"], 0, 1)
            magnitude = gate * magnitude + (LD(1) - gate)
            k = gate * k
        log_r = np.log(magnitude)
        w_re = w["w_re"]
        w_im = w["w_im"] if layer.COMPLEX else np.zeros_like(w_re)
        return np.exp(log_r @ w_re - k @ w_im) * np.cos(k @ w_re + log_r @ w_im)
    raise AssertionError(f"no reference for {name}")


# -- the units under test, built and compiled once per dtype ---------------------
def _x64(dtype):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


class _Unit:
    """A built layer and its jitted (output, Jacobians) function."""

    def __init__(self, case, dtype):
        self.cls_name = get_unit(case[0]).__name__
        self.options = case[1]
        self.dtype = dtype
        with _x64(dtype):
            self.layer = get_unit(case[0])(UNITS, dtype=dtype, **case[1])
            self.layer.build((None, IN_DIM))
            non_trainable = [v.value for v in self.layer.non_trainable_variables]

        layer = self.layer

        def output(trainable, x):
            y, _ = layer.stateless_call(trainable, non_trainable, x)
            return y[0]

        def output_and_jacobians(trainable, x):
            jac_w, jac_x = jax.jacrev(output, argnums=(0, 1))(trainable, x)
            return output(trainable, x), jac_w, jac_x

        self._fn = jax.jit(output_and_jacobians)

    def __call__(self, weights, x):
        with _x64(self.dtype):
            y, jac_w, jac_x = self._fn([jnp.asarray(w) for w in weights], jnp.asarray(x))
            return (
                np.asarray(y),
                [np.asarray(j) for j in jac_w],
                np.asarray(jac_x),
            )


_UNIT_CACHE = {}


def _unit(case, dtype):
    key = (_case_id(case), dtype)
    if key not in _UNIT_CACHE:
        _UNIT_CACHE[key] = _Unit(case, dtype)
    return _UNIT_CACHE[key]


def check_example(unit, weights, x):
    """The problems of one example: {"nan_output", "nan_gradient", "spurious_inf"}."""
    layer = unit.layer
    y, jac_w, jac_x = unit(weights, x)
    names = [v.name for v in layer.trainable_variables]
    ld_weights = {n: np.asarray(w).astype(LD) for n, w in zip(names, weights)}
    with np.errstate(all="ignore"):
        ref = reference(layer, ld_weights, np.asarray(x).astype(LD))[0]
        ref_in_dtype = ref.astype(unit.dtype)
    problems = {}
    nan_out = np.isnan(y) & ~np.isnan(ref)
    if nan_out.any():
        problems["nan_output"] = [int(j) for j in np.flatnonzero(nan_out)]
    spurious = np.isinf(y) & np.isfinite(ref_in_dtype)
    if spurious.any():
        problems["spurious_inf"] = [int(j) for j in np.flatnonzero(spurious)]
    nan_grad = []
    for j in range(UNITS):
        if not np.isfinite(ref_in_dtype[j]):
            continue  # the output overflows the dtype: gradients not checked
        for name, jac in zip(names + ["inputs"], jac_w + [jac_x]):
            if np.isnan(jac[j]).any():
                nan_grad.append(f"y{j}/{name}")
    if nan_grad:
        problems["nan_gradient"] = nan_grad
    return problems


# -- the fuzz ------------------------------------------------------------------------
_STATS = {}


@pytest.fixture(scope="module", autouse=True)
def _write_stats():
    yield
    if STATS_FILE:
        with open(STATS_FILE, "a", encoding="utf-8") as handle:
            for key, counts in _STATS.items():
                handle.write(json.dumps({"case": key, **counts}) + "\n")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_no_nan_where_the_formula_is_finite(case, dtype):
    unit = _unit(case, dtype)
    key = f"{_case_id(case)}/{dtype}"
    counts = _STATS.setdefault(
        key, {"examples": 0, "nan_output": 0, "nan_gradient": 0, "spurious_inf": 0}
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_example_strategy(unit))
    def fuzz(example):
        x, weights = example
        problems = check_example(unit, weights, x)
        counts["examples"] += 1
        for kind in problems:
            counts[kind] += 1
        if STATS_FILE:
            if problems and len(counts.setdefault("first", [])) < 3:
                counts["first"].append(
                    {"problems": problems, "x": x.tolist(), "weights": [w.tolist() for w in weights]}
                )
            return
        assert "nan_output" not in problems and "nan_gradient" not in problems, (
            f"{key}: {problems}\nx = {x!r}\nweights = {weights!r}"
        )

    fuzz()


# -- the reference is the formula --------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_reference_matches_the_layer_on_ordinary_values(case):
    """On ordinary inputs and weights the long-double formula is the layer's."""
    unit = _unit(case, "float32")
    rng = np.random.default_rng(0)
    x = (rng.uniform(0.5, 2.0, (1, IN_DIM)) * rng.choice([-1.0, 1.0], (1, IN_DIM))).astype("float32")
    weights = []
    for v in unit.layer.trainable_variables:
        specials, low, high = _weight_elements(unit.cls_name, v.name, unit.options)
        low, high = max(low, -2.0), min(high, 2.0)
        weights.append(rng.uniform(low, high, tuple(v.shape)).astype("float32"))
    y, _, _ = unit(weights, x)
    names = [v.name for v in unit.layer.trainable_variables]
    ref = reference(
        unit.layer, {n: w.astype(LD) for n, w in zip(names, weights)}, x.astype(LD)
    )[0]
    np.testing.assert_allclose(y, ref.astype(np.float64), rtol=2e-5, atol=1e-6)
