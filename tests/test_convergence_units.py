"""Short seeded convergence runs for the units without one elsewhere.

Each case trains a single unit with one output (`units=1`) on its native
operation of two inputs, through a compiled `model.fit` with Adam and
`steps_per_execution` (one compiled call per epoch), then checks

* the final training MSE (evaluated on the whole training set after fit);
* the relative error far outside the training range: trained on U[1, 2],
  tested on U[10, 100] (inputs 5–100x larger, products up to 10^4);
* the learned effective weights (`layer.effective_weights()`) against the
  exact solution: W = [1, 1] for x1 + x2 and x1·x2, W = [1, -1] for x1 / x2;
* for the gated units (NALU, G-NALU, gated NAU/NMU), that the gate picks the
  right path on the test inputs (g → 1 adds, g → 0 multiplies);
* and, so that the checks above mean something, that the same unit before
  training is far off on the test inputs.

All inputs are positive: the log-space units (MulNAC, NALU, G-NALU, NAC•,σ)
cannot see signs, and a NALU gate σ(x @ G) without bias can only be pushed
to one side for every input when the inputs share a sign.

Units, ops and the measured reliability of the configuration below: the
same code and assertions with `seed` (initializers, shuffling and data)
replaced by 0..9, via `check_seeds` at the bottom of this file:

    MulNAC         x1·x2, x1/x2   10/10, 10/10
    NALU           x1+x2, x1·x2   20/20, 20/20 (seeds 0..19; paper defaults:
                                  tied weights, gate σ(x @ G) without bias,
                                  ε = 1e-7)
    GNALU          x1+x2, x1·x2   10/10, 10/10
    SigmoidMulNAC  x1·x2          10/10
    GatedNAUNMU    x1+x2, x1·x2   10/10, 10/10
    NaiveNPU       x1/x2          10/10
    RealNaiveNPU   x1/x2          10/10

On this easy setting (two positive inputs, no distractors) the paper-default
NALU converged on every seed tried, so seed 0 is used throughout; its known
unreliability shows up with more inputs, negative inputs or inputs near
zero, which are not tested here.

The NAC-style units (tanh ⊙ σ or σ weights) only approach ±1 as their raw
weights grow, so after a few thousand steps W is within 0.001–0.004 of the
solution and, in log space, that leaves a relative error of 1–3 % at
x ≈ 100 (δ·log(x1·x2) with log(x1·x2) ≤ 9.2); hence their looser
tolerances than for the NPUs and the NAU/NMU, which reach (nearly) exact
weights. Untrained, every unit is off by more than 50 % on the test inputs,
and runs with a tiny learning rate, or a gated unit trained on the other
operation, fail these checks.

Budget: 11 runs of 1000–4000 steps, 2–5 s each (about 40 s for the module)
on a loaded 2-core CPU with the JAX backend.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from nalu_keras import (
    GNALU,
    NALU,
    GatedNAUNMU,
    MulNAC,
    NaiveNPU,
    RealNaiveNPU,
    SigmoidMulNAC,
)

pytestmark = pytest.mark.filterwarnings(
    # Keras on JAX with numpy 2 (np.asarray of variables)
    "ignore:__array__ implementation doesn't accept a copy keyword"
)

BATCH = 64
STEPS_PER_EPOCH = 500  # one compiled call (steps_per_execution) per epoch
TRAIN_RANGE = (1.0, 2.0)
TEST_RANGE = (10.0, 100.0)

OPS = {
    "add": (lambda x: x[:, :1] + x[:, 1:], [1.0, 1.0]),
    "mul": (lambda x: x[:, :1] * x[:, 1:], [1.0, 1.0]),
    "div": (lambda x: x[:, :1] / x[:, 1:], [1.0, -1.0]),
}


@dataclasses.dataclass(frozen=True)
class Case:
    unit: type
    op: str
    seed: int
    learning_rate: float
    steps: int  # a multiple of STEPS_PER_EPOCH
    weight_tol: float  # max |W − W*|
    error_tol: float  # max relative error on TEST_RANGE
    mse_tol: float  # final training MSE

    @property
    def weight_name(self):
        """The effective weight that must reach the exact solution."""
        if self.unit is GatedNAUNMU:
            return "W_nau" if self.op == "add" else "W_nmu"
        if self.unit in (NaiveNPU, RealNaiveNPU):
            return "W_re"
        return "W"

    @property
    def gated(self):
        return self.unit in (NALU, GNALU, GatedNAUNMU)


# Log-space NAC family: W within 0.01 of the solution, 5 % at x ≈ 100. (On
# U[1, 2], W = 0.99 instead of 1 would already give an MSE of about 3e-4.)
NAC_TOLS = dict(weight_tol=0.01, error_tol=0.05, mse_tol=2e-4)
# The NPU exponents reach the exact weights.
NPU_TOLS = dict(weight_tol=1e-3, error_tol=1e-3, mse_tol=1e-8)
# The gated NAU/NMU (nearly: on some seeds W_nmu stops at 0.999 after 2000
# steps), but its training MSE is limited by the gate, which saturates more
# slowly on the training inputs than on the (larger) test ones.
GATED_NAU_NMU_TOLS = dict(weight_tol=5e-3, error_tol=5e-3, mse_tol=3e-4)

CASES = {
    "MulNAC-mul": Case(MulNAC, "mul", 0, 0.3, 3000, **NAC_TOLS),
    "MulNAC-div": Case(MulNAC, "div", 0, 0.3, 3000, **NAC_TOLS),
    "NALU-add": Case(NALU, "add", 0, 0.1, 4000, **NAC_TOLS),
    "NALU-mul": Case(NALU, "mul", 0, 0.1, 4000, **NAC_TOLS),
    "GNALU-add": Case(GNALU, "add", 0, 0.3, 4000, **NAC_TOLS),
    "GNALU-mul": Case(GNALU, "mul", 0, 0.3, 4000, **NAC_TOLS),
    "SigmoidMulNAC-mul": Case(SigmoidMulNAC, "mul", 0, 0.3, 2000, **NAC_TOLS),
    "GatedNAUNMU-add": Case(GatedNAUNMU, "add", 0, 0.1, 2000, **GATED_NAU_NMU_TOLS),
    "GatedNAUNMU-mul": Case(GatedNAUNMU, "mul", 0, 0.1, 2000, **GATED_NAU_NMU_TOLS),
    "NaiveNPU-div": Case(NaiveNPU, "div", 0, 0.05, 1000, **NPU_TOLS),
    "RealNaiveNPU-div": Case(RealNaiveNPU, "div", 0, 0.05, 1000, **NPU_TOLS),
}


def relative_error(model, x, y):
    prediction = model.predict(x, batch_size=len(x), verbose=0).astype(np.float64)
    return float(np.max(np.abs(prediction - y) / np.abs(y)))


def train(case, seed=None):
    """One seeded run of `case`; returns a dict of what the checks need."""
    seed = case.seed if seed is None else seed
    target, _ = OPS[case.op]
    keras.utils.set_random_seed(seed)  # initializers and shuffling
    rng = np.random.default_rng(seed)
    x = rng.uniform(*TRAIN_RANGE, size=(BATCH * STEPS_PER_EPOCH, 2)).astype("float32")
    y = target(x)
    x_far = rng.uniform(*TEST_RANGE, size=(1024, 2)).astype("float32")
    y_far = target(x_far.astype(np.float64))

    layer = case.unit(1)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.compile(
        optimizer=keras.optimizers.Adam(case.learning_rate),
        loss="mse",
        steps_per_execution=STEPS_PER_EPOCH,
    )
    untrained_error = relative_error(model, x_far, y_far)
    history = model.fit(
        x, y, batch_size=BATCH, epochs=case.steps // STEPS_PER_EPOCH, verbose=0
    )
    result = dict(
        layer=layer,
        losses=history.history["loss"],
        train_mse=float(model.evaluate(x, y, batch_size=len(x), verbose=0)),
        untrained_error=untrained_error,
        error=relative_error(model, x_far, y_far),
        weights=layer.effective_weights(),
        gate=None,
    )
    if case.gated:
        result["gate"] = keras.ops.convert_to_numpy(layer.gate_value(x_far))
    return result


def check(case, result):
    """The assertions of a converged run (raise AssertionError otherwise)."""
    _, solution = OPS[case.op]
    w = result["weights"][case.weight_name][:, 0]
    gate = result["gate"]
    assert np.all(np.isfinite(result["losses"]))
    assert result["untrained_error"] > 0.5, result["untrained_error"]
    assert result["train_mse"] < case.mse_tol, result["train_mse"]
    assert np.max(np.abs(w - solution)) < case.weight_tol, w
    if case.unit is NaiveNPU:
        np.testing.assert_allclose(result["weights"]["W_im"], 0.0, atol=case.weight_tol)
    if case.gated:
        # g = 1 selects the additive path, g = 0 the multiplicative one.
        if case.op == "add":
            assert np.min(gate) > 0.999, np.min(gate)
        else:
            assert np.max(gate) < 1e-3, np.max(gate)
    assert result["error"] < case.error_tol, result["error"]


def summary(name, case, result):
    weights = {k: np.round(v.ravel(), 5).tolist() for k, v in result["weights"].items()}
    text = (
        f"{name}: seed {case.seed}, {case.steps} steps, lr {case.learning_rate}, "
        f"train mse {result['train_mse']:.3g}, max relative error on "
        f"U{list(TEST_RANGE)} {result['error']:.3g} (untrained "
        f"{result['untrained_error']:.3g}), weights {weights}"
    )
    if result["gate"] is not None:
        text += f", gate in [{result['gate'].min():.3g}, {result['gate'].max():.3g}]"
    return text


@pytest.mark.parametrize("name", list(CASES))
def test_unit_learns_its_operation_and_extrapolates(name):
    case = CASES[name]
    result = train(case)
    print(summary(name, case, result))
    check(case, result)


def check_seeds(names=None, seeds=range(10)):
    """How many of `seeds` pass `check`, per case (not run by pytest):

        python -c "import sys; sys.path.insert(0, 'tests'); \\
            import test_convergence_units as t; print(t.check_seeds())"
    """
    counts = {}
    for name in names or CASES:
        case = CASES[name]
        passed = []
        for seed in seeds:
            try:
                check(case, train(case, seed))
            except AssertionError:
                continue
            passed.append(seed)
        counts[name] = (len(passed), len(seeds), passed)
    return counts
