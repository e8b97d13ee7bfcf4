"""The Madsen & Johansen (2020) arithmetic benchmark, many seeds at once.

Static task: x ∈ R^100, a and b sums of two overlapping subsets, t = op(a, b)
(see `tasks.arithmetic`). A model is two units, 100 → 2 → 1, trained with
Adam (lr 1e-3, batch 128, a fresh batch every step) by
`training.vectorized.train_vectorized`, every seed of one configuration in
one compiled program. One *configuration* is (unit, op, range pair).

Per seed (see `score_seed`):
* model selection: the logged step with the lowest validation
  (interpolation) MSE among the last 5,000 logged steps, as in the
  reference's analysis (`evaluation.select_best`);
* success: extrapolation MSE at that step below `evaluation.success_threshold`
  of the task and extrapolation range (Monte Carlo, cached in
  `<out>/bench_thresholds.json`); a range on which no finite threshold exists
  (e.g. root of negative sums) gives threshold NaN and no success;
* solved-at: first logged step whose extrapolation MSE is below it;
* sparsity error: `evaluation.sparsity_error` of the weights at the
  selected step (the column `sparsity_step`), as the protocol states. NaN
  for "Linear" (no arithmetic unit).

Models ("unit" names): NAU (NAU → NAU), NMU (NAU → NMU), NAC+ (NAC → NAC),
NAC• (NAC → MulNAC), NAC•,σ (NAC → SigmoidMulNAC), NALU (NALU → NALU),
Linear (Dense → Dense; with biases in the reference preset, without in the
library preset), ReLU and ReLU6 (Dense with that activation → Dense),
NAC•,NMU (a NAC → `BoundedMulNAC`), NPU and RealNPU (NAU → NPU / RealNPU, no
regularizer, Adam lr 5e-3 as in the Primer). NAU and NMU carry `Sparsity` regularizers on
both layers whose strength follows the paper's linear warm-up:

    schedule  steps   NMU model                  NAU model
    fast      5e4     λ̂ = 10, 2e4 → 3.5e4        λ̂ = 0.01, 5e3 → 5e4
    paper     5e6     λ̂ = 10, 1e6 → 2e6          λ̂ = 0.01, 5e3 → 5e4
    primer    5e4     λ̂ = 10, 2e4 → 3.5e4        λ̂ = 0.01, 2e4 → 3.5e4

("fast" is the Primer benchmark's compression.)

The Primer's single-module suite (`BenchConfig(suite="primer")`,
`nalu-keras bench --suite primer`): one unit reads the input directly,
y = x_k ∘ x_{k+1} for ∘ in +, −, ×, ÷, input size 2 (or 10 and 100: the
same two relevant inputs among irrelevant ones, at an offset fixed by the
task seed), its nine range pairs (`--ranges primer`), the "primer" schedule
and the thresholds of the ε-perturbed single unit. The iNALU is not part of
it here: its gradient clipping and re-initialization are not in the
vectorized trainer. When `steps` is set to
something other than the schedule's default, the warm-up steps of "fast" and
"primer" are scaled by steps / default steps, so a short run still sees the
whole warm-up; "paper" keeps the reference's absolute steps (1e6 → 2e6 for
the NMU model whatever the run length, as the reference runs it), so its
results at N steps compare with the published runs after N steps.

Data: each seed has its own stream of training batches. With the reference
preset each seed also has its own subsets (`subsets="per-seed"`: seed s
learns `task(op).with_seed(s)`, as the reference seeds its data set with the
run seed); the validation and test inputs are the same for every seed.

Resumability: after each configuration its rows are appended to
`<out>/bench_runs.csv` and `<out>/bench_curves.csv` (flushed and fsynced),
then the configuration is recorded in `<out>/bench_done.json` (written to a
temporary file and renamed). On a new run, rows of configurations not
recorded as done (an interruption mid-write) are removed first, so an
interrupted configuration is recomputed from scratch without duplicates;
done configurations are skipped. The json also stores the run settings
(schedule, steps, seeds, ...); reusing a directory with other settings is an
error.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os

import numpy as np

from nalu_keras.lab._files import atomic_write
from nalu_keras.lab.evaluation import (
    NoThresholdError,
    check_threshold_cache,
    is_success,
    select_best,
    solved_at,
    sparsity_error,
    success_threshold,
    summarize_runs,
)
from nalu_keras.lab.reporting import (
    format_number,
    markdown_table,
    pyplot,
    save_figure,
    text_table,
)
from nalu_keras.lab.tasks import OPERATIONS, ArithmeticTask, ValueRange
from nalu_keras.lab.tasks.arithmetic import OP_SYMBOLS, SUBSET_MODES
from nalu_keras.validation import check_learning_rate, check_log_points, check_steps

UNITS = ("NAU", "NMU", "NAC+", "NAC•", "NAC•,σ", "NAC•,NMU", "NALU", "Linear", "ReLU", "ReLU6",
         "NPU", "RealNPU")
# The models' presets: "reference" builds each row of Madsen & Johansen's
# Table 1 as their code does (`build_model`); "library" uses this library's
# own defaults (Glorot initializations, no bias in Linear).
PRESETS = ("reference", "library")
DEFAULT_PRESET = {"madsen": "reference", "primer": "library"}
# Adam per preset: (form, ε) — torch.optim.Adam's for the reference, Keras' otherwise
PRESET_ADAM = {"reference": ("pytorch", 1e-8), "library": ("keras", 1e-7)}
# Subsets per preset: the reference seeds its data with the run seed, so the
# subsets' offset moves from seed to seed; the library preset keeps task_seed's
PRESET_SUBSETS = {"reference": "per-seed", "library": "shared"}
# units with their own default learning rate (`BenchConfig.npu_learning_rate`)
POWER_UNITS = ("NPU", "RealNPU")
SUITES = ("madsen", "primer")
PRIMER_OPS = ("add", "sub", "mul", "div")
# ASCII spellings accepted for the unit names (case-insensitive).
UNIT_ALIASES = {
    "nau": "NAU", "nmu": "NMU", "nac+": "NAC+", "nacadd": "NAC+", "nac": "NAC+",
    "nac•": "NAC•", "nac*": "NAC•", "nacmul": "NAC•",
    "nac•,σ": "NAC•,σ", "nac•σ": "NAC•,σ", "nac*,sigma": "NAC•,σ", "nac*sigma": "NAC•,σ",
    "nacsigma": "NAC•,σ", "nac•,sigma": "NAC•,σ", "nalu": "NALU", "linear": "Linear",
    "npu": "NPU", "realnpu": "RealNPU", "relu": "ReLU", "relu6": "ReLU6",
    "nac•,nmu": "NAC•,NMU", "nac*,nmu": "NAC•,NMU", "nac*nmu": "NAC•,NMU", "nac•nmu": "NAC•,NMU",
    "nacnmu": "NAC•,NMU",
}

DEFAULT_RANGES = ("U[1,2]:U[2,6]",)
RANGE_SWEEPS = {
    "madsen": (
        "U[-2,-1]:U[-6,-2]",
        "U[-2,2]:U[-6,-2]∪U[2,6]",
        "U[0,1]:U[1,5]",
        "U[0.1,0.2]:U[0.2,2]",
        "U[1,2]:U[2,6]",
        "U[1.1,1.2]:U[1.2,6]",
        "U[10,20]:U[20,40]",
    ),
    "primer": (
        "U[-20,-10]:U[-40,-20]",
        "U[-2,-1]:U[-6,-2]",
        "U[-1.2,-1.1]:U[-6.1,-1.2]",
        "U[-0.2,-0.1]:U[-2,-0.2]",
        "U[-2,2]:U[-6,-2]∪U[2,6]",
        "U[0.1,0.2]:U[0.2,2]",
        "U[1,2]:U[2,6]",
        "U[1.1,1.2]:U[1.2,6]",
        "U[10,20]:U[20,40]",
    ),
    "default": DEFAULT_RANGES,
}

# schedule -> (default steps, default log_every, {unit: (λ̂, start, end)})
SCHEDULES = {
    "fast": (50_000, 1_000, {"NMU": (10.0, 20_000, 35_000), "NAC•,NMU": (10.0, 20_000, 35_000),
                             "NAU": (0.01, 5_000, 50_000)}),
    "paper": (5_000_000, 1_000, {"NMU": (10.0, 1_000_000, 2_000_000),
                                 "NAC•,NMU": (10.0, 1_000_000, 2_000_000),
                                 "NAU": (0.01, 5_000, 50_000)}),
    "primer": (50_000, 1_000, {"NMU": (10.0, 20_000, 35_000), "NAC•,NMU": (10.0, 20_000, 35_000),
                               "NAU": (0.01, 20_000, 35_000)}),
}
# schedules whose ramps stay at their absolute steps when `steps` is changed
ABSOLUTE_SCHEDULES = ("paper",)
DEFAULT_SCHEDULE = {"madsen": "fast", "primer": "primer"}
DEFAULT_INPUT_SIZE = {"madsen": 100, "primer": 2}

# Model selection among the last 5,000 logged steps, as the reference's analysis
SELECTION_WINDOW = 5_000

RUNS_FILE = "bench_runs.csv"
CURVES_FILE = "bench_curves.csv"
DONE_FILE = "bench_done.json"
THRESHOLD_FILE = "bench_thresholds.json"
TABLE_FILE = "bench_table.md"
SUCCESS_PNG = "bench_success.png"
CURVES_PNG = "bench_curves.png"

RUN_COLUMNS = (
    "unit", "op", "range", "interp_range", "extrap_range", "seed", "steps", "schedule",
    "threshold", "selected_step", "selected_interp_mse", "extrapolation_mse", "success",
    "solved_at", "sparsity_error", "sparsity_step", "final_extrap_mse",
)
CURVE_COLUMNS = ("unit", "op", "range", "seed", "step", "train_loss", "interp_mse", "extrap_mse")


def canonical_unit(name):
    """The canonical unit name of `name` (or an ASCII alias); ValueError if unknown."""
    if name in UNITS:
        return name
    canonical = UNIT_ALIASES.get(str(name).strip().lower().replace(" ", ""))
    if canonical is None:
        raise ValueError(f"unknown unit {name!r}; expected one of {', '.join(UNITS)} "
                         "(ASCII: NAC*, NAC*sigma, NAC*NMU)")
    return canonical


def parse_range_pair(text):
    """'INTERP:EXTRAP' -> (interp, extrap) canonical strings; ValueError if bad."""
    pieces = str(text).split(":")
    if len(pieces) != 2:
        raise ValueError(f"bad range pair {text!r}; expected 'INTERP:EXTRAP', e.g. 'U[1,2]:U[2,6]'")
    try:
        interp, extrap = (ValueRange.parse(p) for p in pieces)
    except ValueError as error:
        raise ValueError(f"bad range pair {text!r}: {error}") from None
    return str(interp), str(extrap)


def expand_ranges(ranges):
    """A sweep name, a pair, or a sequence of pairs -> tuple of canonical pairs."""
    if isinstance(ranges, str):
        ranges = RANGE_SWEEPS.get(ranges, (ranges,))
    out = []
    for item in ranges:
        for pair in RANGE_SWEEPS.get(item, (item,)):
            pair = "{}:{}".format(*parse_range_pair(pair))
            if pair not in out:
                out.append(pair)
    if not out:
        raise ValueError("no range pair given")
    return tuple(out)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmark sweep: every (unit, op, range pair) with `seeds` seeds.

    `suite` "madsen" (default): Madsen & Johansen's task, input_size 100,
    a and b sums of overlapping subsets, a model of two units
    input → hidden → 1. `suite` "primer": the Primer's single-module task,
    one unit input → 1 with y = x_i ∘ x_j for two adjacent inputs (input_size
    2 by default; 10 and 100 are its larger variants), ops +, −, ×, ÷ only,
    success thresholds of the perturbed single unit
    (`success_threshold(..., single_module=True)`), default schedule
    "primer". `schedule` and `input_size` default to the suite's.
    `npu_learning_rate` is the Adam learning rate of the NPU and RealNPU
    models (the Primer's 5e-3); `learning_rate` that of all others.
    `seed_group`: seeds trained together in one compiled program (default:
    half the seeds, at most 100, so that two workers both have a group).
    The float32 rounding of a program can depend on how many seeds it
    holds, so `seed_group` is part of the settings.
    `preset`: "reference" (default for "madsen": each model built as in
    Madsen & Johansen's code, see `build_model`, and trained with PyTorch's
    Adam, ε = 1e-8) or "library" (default for "primer": this library's own
    layer defaults and Keras' Adam, ε = 1e-7).
    `subsets`: "per-seed" (the reference preset's default: seed s learns
    the subsets of `task(op).with_seed(s)`, as the reference seeds its data
    with the run seed) or "shared" (the library preset's default: every
    seed learns the subsets of `task_seed`); see `train_vectorized`.
    `workers`: processes to share out the seed groups (see
    `train_vectorized`); it changes the speed, never the results (bit for
    bit), and is not part of the settings a resumed run must match.
    """

    units: tuple = ("NAU", "NMU")
    ops: tuple = ("add", "mul")
    ranges: tuple = DEFAULT_RANGES
    seeds: int = 100
    schedule: str | None = None
    steps: int | None = None
    log_every: int | None = None
    learning_rate: float = 1e-3
    batch_size: int = 128
    hidden: int = 2
    input_size: int | None = None
    task_seed: int = 0
    eval_size: int = 10_000
    threshold_samples: int = 1_000_000
    suite: str = "madsen"
    npu_learning_rate: float = 5e-3
    workers: int = 1
    seed_group: int | None = None
    preset: str | None = None
    subsets: str | None = None

    def __post_init__(self):
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; expected one of {', '.join(SUITES)}")
        if self.schedule is None:
            object.__setattr__(self, "schedule", DEFAULT_SCHEDULE[self.suite])
        if self.input_size is None:
            object.__setattr__(self, "input_size", DEFAULT_INPUT_SIZE[self.suite])
        if self.preset is None:
            object.__setattr__(self, "preset", DEFAULT_PRESET[self.suite])
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.subsets is None:
            object.__setattr__(self, "subsets", PRESET_SUBSETS[self.preset])
        if self.subsets not in SUBSET_MODES:
            raise ValueError(f"unknown subsets {self.subsets!r}; expected one of {', '.join(SUBSET_MODES)}")
        units = (self.units,) if isinstance(self.units, str) else tuple(self.units)
        object.__setattr__(self, "units", tuple(dict.fromkeys(canonical_unit(u) for u in units)))
        ops = (self.ops,) if isinstance(self.ops, str) else tuple(self.ops)
        for op in ops:
            if op not in OPERATIONS:
                raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPERATIONS)}")
        object.__setattr__(self, "ops", tuple(dict.fromkeys(ops)))
        if self.suite == "primer":
            bad = [op for op in self.ops if op not in PRIMER_OPS]
            if bad:
                raise ValueError(f"the primer suite has the ops {', '.join(PRIMER_OPS)}; not {', '.join(bad)}")
        if not self.units or not self.ops:
            raise ValueError("at least one unit and one op are needed")
        object.__setattr__(self, "ranges", expand_ranges(self.ranges))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {', '.join(SCHEDULES)}")
        for name in ("seeds", "batch_size", "hidden", "input_size", "eval_size", "threshold_samples",
                     "workers"):
            _positive_int(name, getattr(self, name))
        if self.seed_group is None:
            object.__setattr__(self, "seed_group", min(100, -(-self.seeds // 2)))
        for name in ("steps", "log_every", "seed_group"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        for name in ("learning_rate", "npu_learning_rate"):
            check_learning_rate(name, getattr(self, name))
        check_steps("steps", self.total_steps)
        check_log_points(self.total_steps, self.log_interval, self.seeds)
        if self.suite == "primer" and self.input_size < 2:
            raise ValueError(f"the primer suite needs input_size >= 2, got {self.input_size}")
        task = self.task("add")
        if self.suite == "primer" and (task.subset_size, task.overlap_size) != (1, 0):
            raise ValueError(f"input_size {self.input_size} does not give single-input operands")

    @property
    def total_steps(self):
        return self.steps if self.steps is not None else SCHEDULES[self.schedule][0]

    @property
    def log_interval(self):
        return self.log_every if self.log_every is not None else SCHEDULES[self.schedule][1]

    def configurations(self):
        """[(unit, op, range pair)] in sweep order (range, op, unit)."""
        return [(u, o, r) for r in self.ranges for o in self.ops for u in self.units]

    def warmup(self, unit):
        """(λ̂, start, end) of `unit`'s sparsity warm-up, or None. The "paper"
        schedule keeps the reference's absolute steps whatever `steps` is (a
        run shorter than the ramp's start never sees the regularizer, as in
        the reference); the compressed schedules scale the ramp to `steps`."""
        default_steps, _, table = SCHEDULES[self.schedule]
        if unit not in table:
            return None
        strength, start, end = table[unit]
        if self.total_steps != default_steps and self.schedule not in ABSOLUTE_SCHEDULES:
            scale = self.total_steps / default_steps
            start = int(round(start * scale))
            end = max(int(round(end * scale)), start + 1)
        return strength, start, end

    def settings(self):
        """What must match to resume into an output directory."""
        settings = {
            "schedule": self.schedule, "steps": self.total_steps, "log_every": self.log_interval,
            "seeds": self.seeds, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
            "hidden": self.hidden, "input_size": self.input_size, "task_seed": self.task_seed,
            "eval_size": self.eval_size, "threshold_samples": self.threshold_samples,
            "seed_group": self.seed_group, "preset": self.preset, "subsets": self.subsets,
        }
        # keys added later, stored only when they matter (older directories stay resumable)
        if self.suite != "madsen":
            settings["suite"] = self.suite
        if any(u in POWER_UNITS for u in self.units):
            settings["npu_learning_rate"] = self.npu_learning_rate
        return settings

    @property
    def adam(self):
        """(form, ε) of Adam: PyTorch's form with ε = 1e-8 for the reference
        preset (the reference trains with torch.optim.Adam's defaults),
        Keras' with ε = 1e-7 for the library preset (see `adam_update`)."""
        return PRESET_ADAM[self.preset]

    def learning_rate_for(self, unit):
        return self.npu_learning_rate if canonical_unit(unit) in POWER_UNITS else self.learning_rate

    def task(self, op):
        if self.suite == "primer":
            return ArithmeticTask(op, input_size=self.input_size, subset_ratio=1.0 / self.input_size,
                                  overlap_ratio=0.0, seed=self.task_seed)
        return ArithmeticTask(op, input_size=self.input_size, seed=self.task_seed)

    def model_text(self):
        if self.suite == "primer":
            return f"one unit {self.input_size} → 1 (the Primer's single-module task)"
        return f"{self.input_size} → {self.hidden} → 1"


# -- models -------------------------------------------------------------------
def model_builder(unit, config):
    """A function () -> a built Keras model of `unit`: input → hidden → 1
    (suite "madsen") or one unit input → 1 (suite "primer"). Picklable, so
    that `workers > 1` can send it to other processes."""
    return functools.partial(build_model, canonical_unit(unit), config)


def build_model(unit, config):
    """The model of `unit` for `config` (see `model_builder`).

    Suite "madsen", preset "reference": each row of Madsen & Johansen's
    Table 1 as their code builds it (input → 2 → 1, no bias unless said):

        Linear    Dense(bias) → Dense(bias), Glorot-uniform, zero biases
        ReLU      Dense(ReLU, bias, He-uniform) → Dense(bias, Glorot-uniform)
        ReLU6     the same with ReLU6
        NAC+      NAC → NAC,      Ŵ, M̂ ~ NACVarianceUniform (r 0.504, 9.47)
        NAC•      NAC → MulNAC,   the same initialization, ε = 1e-7
        NAC•,σ    NAC → SigmoidMulNAC (Ŵ Glorot-normal, untruncated)
        NAC•,NMU  NAU → BoundedMulNAC, Sparsity on both (the NMU's ramp)
        NALU      NALU → NALU, one NAC shared by both paths, NAC weights as
                  NAC+, gate Glorot-uniform without bias
        NAU       NAU → NAU, Sparsity on both (λ̂ 0.01, 5e3 → 5e4)
        NMU       NAU → NMU, Sparsity on both (λ̂ 10, 1e6 → 2e6)

    (The reference's NAU also clamps W to [−1, 1] in its forward pass; with
    the projection after every step W never leaves [−1, 1], so the clamp
    changes nothing and is not added.) Preset "library": the same layers
    with this library's defaults (Glorot-uniform everywhere, Linear without
    bias). NPU, RealNPU: NAU → NPU / RealNPU in both.
    Suite "primer": one unit input → 1 with the library's defaults.
    """
    import keras

    from nalu_keras.initializers import NACVarianceUniform
    from nalu_keras.layers import (
        NAC,
        NALU,
        NAU,
        NMU,
        NPU,
        BoundedMulNAC,
        MulNAC,
        RealNPU,
        SigmoidMulNAC,
    )
    from nalu_keras.regularizers import Sparsity

    unit = canonical_unit(unit)
    sparse = config.warmup(unit) is not None
    reference = config.preset == "reference"

    def reg():
        return {"w_regularizer": Sparsity(0.0)} if sparse else {}

    def nac_init():
        if not reference:
            return {}
        return {"w_hat_initializer": NACVarianceUniform(), "m_hat_initializer": NACVarianceUniform()}

    def dense(width, activation=None):
        if not reference:
            return keras.layers.Dense(width, activation=activation, use_bias=activation is not None)
        initializer = "he_uniform" if activation else "glorot_uniform"
        return keras.layers.Dense(width, activation=activation, kernel_initializer=initializer)

    def sigmoid_mul(width):
        if not reference:
            return SigmoidMulNAC(width)
        return SigmoidMulNAC(width, w_hat_initializer=keras.initializers.VarianceScaling(
            1.0, mode="fan_avg", distribution="untruncated_normal"))

    h = config.hidden
    if config.suite == "primer":
        layers = {
            "NAU": lambda: [NAU(1, **reg())], "NMU": lambda: [NMU(1, **reg())], "NAC+": lambda: [NAC(1)],
            "NAC•": lambda: [MulNAC(1)], "NAC•,σ": lambda: [SigmoidMulNAC(1)], "NALU": lambda: [NALU(1)],
            "NAC•,NMU": lambda: [BoundedMulNAC(1, **reg())],
            "Linear": lambda: [keras.layers.Dense(1, use_bias=False)], "NPU": lambda: [NPU(1)],
            "RealNPU": lambda: [RealNPU(1)],
            "ReLU": lambda: [dense(1, "relu")], "ReLU6": lambda: [dense(1, "relu6")],
        }[unit]()
    else:
        layers = {
            "NAU": lambda: [NAU(h, **reg()), NAU(1, **reg())],
            "NMU": lambda: [NAU(h, **reg()), NMU(1, **reg())],
            "NAC+": lambda: [NAC(h, **nac_init()), NAC(1, **nac_init())],
            "NAC•": lambda: [NAC(h, **nac_init()), MulNAC(1, **nac_init())],
            "NAC•,σ": lambda: [NAC(h, **nac_init()), sigmoid_mul(1)],
            "NAC•,NMU": lambda: [NAU(h, **reg()), BoundedMulNAC(1, **reg())],
            "NALU": lambda: [NALU(h, **nac_init()), NALU(1, **nac_init())],
            "Linear": lambda: [dense(h), dense(1)],
            "ReLU": lambda: [dense(h, "relu"), dense(1)],
            "ReLU6": lambda: [dense(h, "relu6"), dense(1)],
            "NPU": lambda: [NAU(h), NPU(1)],
            "RealNPU": lambda: [NAU(h), RealNPU(1)],
        }[unit]()
    return keras.Sequential([keras.Input((config.input_size,)), *layers])


def strengths_for(unit, config):
    from nalu_keras.lab.training.vectorized import linear_warmup

    warm = config.warmup(unit)
    if warm is None:
        return None
    return linear_warmup("sparsity_strength", *warm)


# -- scoring ------------------------------------------------------------------
def score_seed(steps, interp_mse, extrap_mse, threshold):
    """Model selection, success and solved-at of one seed's logged curves.

    `threshold` may be NaN (no finite threshold): then no success.
    """
    selection = select_best(steps, interp_mse, extrap_mse, window=SELECTION_WINDOW)
    valid = threshold is not None and math.isfinite(threshold)
    return {
        "selected_step": selection.step,
        "selected_interp_mse": selection.interpolation_mse,
        "extrapolation_mse": selection.extrapolation_mse,
        "success": bool(valid and is_success(selection.extrapolation_mse, threshold)),
        "solved_at": solved_at(steps, extrap_mse, threshold) if valid else None,
    }


def score_result(result, threshold, model=None):
    """{seed: score dict} for a `TrainResult`-like object (`.rows`, `.seeds`).

    With `model` (built by the same builder) and a result that has
    `assign_to`, adds the sparsity error of each seed's weights at its
    selected step (the final weights if the result holds no selection).
    """
    scores = {}
    for seed in result.seeds:
        rows = sorted((r for r in result.rows if r["seed"] == seed), key=lambda r: r["step"])
        steps = [r["step"] for r in rows]
        score = score_seed(steps, [r["interp_mse"] for r in rows], [r["extrap_mse"] for r in rows], threshold)
        score["final_extrap_mse"] = rows[-1]["extrap_mse"]
        score["sparsity_error"] = math.nan
        selected = len(getattr(result, "selected_steps", ())) == len(result.seeds)
        which = "selected" if selected else "final"
        score["sparsity_step"] = (result.selected_steps[result.index(seed)] if selected else steps[-1])
        if model is not None and hasattr(result, "assign_to"):
            try:
                score["sparsity_error"] = sparsity_error(result.assign_to(model, seed, which=which))
            except ValueError:  # no arithmetic unit (Linear)
                pass
        scores[seed] = score
    return scores


def threshold_for(config, op, extrap, out):
    """The success threshold, or NaN where none exists (`NoThresholdError`);
    a damaged cache file is an error (ValueError naming it)."""
    try:
        return success_threshold(config.task(op), extrap, samples=config.threshold_samples,
                                 single_module=config.suite == "primer",
                                 cache_path=os.path.join(out, THRESHOLD_FILE))
    except NoThresholdError:
        return math.nan


def run_configuration(config, unit, op, pair, out):
    """Train every seed of one configuration; returns (run rows, curve rows)."""
    from nalu_keras.lab.training.vectorized import train_vectorized

    interp, extrap = parse_range_pair(pair)
    threshold = threshold_for(config, op, extrap, out)  # before training: a bad cache fails fast
    build = model_builder(unit, config)
    result = train_vectorized(
        build, config.task(op), list(range(config.seeds)), config.total_steps,
        interpolation_range=interp, extrapolation_range=extrap, batch_size=config.batch_size,
        learning_rate=config.learning_rate_for(unit), log_every=config.log_interval,
        strengths=strengths_for(unit, config), validation_size=config.eval_size,
        test_size=config.eval_size, workers=config.workers, seed_chunk=config.seed_group,
        adam_form=config.adam[0], epsilon=config.adam[1], subsets=config.subsets,
    )
    scores = score_result(result, threshold, model=build())
    base = {"unit": unit, "op": op, "range": pair}
    runs = []
    for seed in result.seeds:
        row = dict(base, interp_range=interp, extrap_range=extrap, seed=seed,
                   steps=config.total_steps, schedule=config.schedule, threshold=threshold)
        row.update(scores[seed])
        runs.append({c: row[c] for c in RUN_COLUMNS})
    curves = [dict(base, **{c: r[c] for c in CURVE_COLUMNS[3:]}) for r in result.rows]
    return runs, curves


# -- files --------------------------------------------------------------------
def _key(row):
    return (row["unit"], row["op"], row["range"])


def _write_json_atomic(path, data):
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)


def _read_csv(path):
    """The rows of the CSV file `path` ([] if there is none); a file that is
    not UTF-8 CSV text is a ValueError naming it."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path!r} cannot be read as a CSV file of benchmark results ({error}); "
                         "move it away (the configurations it held are then recomputed) or "
                         "use another output directory") from None


def _write_csv_atomic(path, rows, columns):
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _append_csv(path, rows, columns):
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())


def load_done(out, config):
    """The set of completed configuration keys in `out` (checks the settings)."""
    path = os.path.join(out, DONE_FILE)
    if not os.path.exists(path):
        return set()
    remedy = ("; delete it to recompute every configuration of this directory, or use another "
              "output directory")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path!r} cannot be read as JSON ({error}){remedy}") from None
    keys = data.get("done", []) if isinstance(data, dict) else None
    if not (isinstance(keys, list) and all(
            isinstance(k, list) and len(k) == 3 and all(isinstance(p, str) for p in k) for k in keys)):
        raise ValueError(f"{path!r} is not a list of finished configurations{remedy}")
    if data.get("done") and data.get("settings") != config.settings():
        raise ValueError(
            f"{out!r} holds benchmark results with other settings ({data.get('settings')}); "
            "use another output directory"
        )
    return {tuple(key) for key in data.get("done", [])}


def _save_done(out, config, done):
    _write_json_atomic(os.path.join(out, DONE_FILE),
                       {"settings": config.settings(), "done": [list(k) for k in sorted(done)]})


def _compact(path, columns, done, unique):
    """Drop rows of unfinished configurations and duplicates; rewrite if needed."""
    rows = _read_csv(path)
    kept, seen = [], set()
    for row in rows:
        if None in row or any(row.get(c) is None for c in columns):
            continue  # a truncated line
        if _key(row) not in done:
            continue
        ident = tuple(row[c] for c in unique)
        if ident in seen:
            continue
        seen.add(ident)
        kept.append(row)
    if len(kept) != len(rows) or (rows and list(rows[0]) != list(columns)):
        _write_csv_atomic(path, kept, columns)


def _logged_count(config):
    steps, every = config.total_steps, config.log_interval
    return steps // every + 1 + (1 if steps % every else 0)


def _incomplete(out, config, done):
    """The done configurations whose rows are not all in the CSV files:
    {key: what is missing}."""
    seeds = set(range(config.seeds))
    runs, curves = {}, {}
    for row in _read_csv(os.path.join(out, RUNS_FILE)):
        runs.setdefault(_key(row), set()).add(row["seed"])
    for row in _read_csv(os.path.join(out, CURVES_FILE)):
        curves[_key(row)] = curves.get(_key(row), 0) + 1
    expected = {str(s) for s in seeds}
    missing = {}
    for key in done:
        have = runs.get(key, set())
        if have != expected:
            missing[key] = f"{len(expected - have)} of {len(expected)} run rows missing"
        elif curves.get(key, 0) != len(seeds) * _logged_count(config):
            missing[key] = (f"{curves.get(key, 0)} of {len(seeds) * _logged_count(config)} "
                            "curve rows present")
    return missing


def check_out(config, out):
    """Raise a ValueError (naming the file) if the result files in `out` are
    damaged or belong to other settings; nothing is written."""
    if os.path.isdir(out):
        check_threshold_cache(os.path.join(out, THRESHOLD_FILE))
        load_done(out, config)
        _read_csv(os.path.join(out, RUNS_FILE))


def _stderr_notice(text):
    import sys

    print(f"nalu-keras: {text}", file=sys.stderr)


def run(config, out, progress=None, after_config=None, notice=_stderr_notice):
    """Run every configuration not yet done in `out`.

    `progress(unit, op, pair, skipped)` after each configuration;
    `after_config(unit, op, pair)` after each newly computed configuration
    has been committed (a test hook). A configuration recorded as done whose
    rows are missing from the CSV files (e.g. a deleted bench_runs.csv) is
    recomputed, and `notice(text)` (default: a line on stderr) says so.
    Returns the list of computed keys.
    """
    os.makedirs(out, exist_ok=True)
    check_threshold_cache(os.path.join(out, THRESHOLD_FILE))
    done = load_done(out, config)
    runs_path, curves_path = os.path.join(out, RUNS_FILE), os.path.join(out, CURVES_FILE)

    def compact():
        _compact(runs_path, RUN_COLUMNS, done, ("unit", "op", "range", "seed"))
        _compact(curves_path, CURVE_COLUMNS, done, ("unit", "op", "range", "seed", "step"))

    compact()
    missing = _incomplete(out, config, done)
    if missing:
        for key in sorted(missing):
            notice(f"{'/'.join(key)} is recorded as done in {os.path.join(out, DONE_FILE)} but "
                   f"{missing[key]}; recomputing it")
        done -= set(missing)
        compact()
    _save_done(out, config, done)
    computed = []
    for unit, op, pair in config.configurations():
        key = (unit, op, pair)
        if key in done:
            if progress is not None:
                progress(unit, op, pair, True)
            continue
        runs, curves = run_configuration(config, unit, op, pair, out)
        _append_csv(runs_path, runs, RUN_COLUMNS)
        _append_csv(curves_path, curves, CURVE_COLUMNS)
        done.add(key)
        _save_done(out, config, done)
        computed.append(key)
        if progress is not None:
            progress(unit, op, pair, False)
        if after_config is not None:
            after_config(unit, op, pair)
    return computed


# -- reporting ----------------------------------------------------------------
def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def load_runs(out, config=None):
    """Typed run rows of `out` (only the configurations of `config` if given)."""
    keys = None if config is None else set(config.configurations())
    rows = []
    for row in _read_csv(os.path.join(out, RUNS_FILE)):
        if keys is not None and _key(row) not in keys:
            continue
        row = dict(row)
        row["seed"] = int(row["seed"])
        row["success"] = row["success"] == "True"
        for c in ("threshold", "selected_step", "selected_interp_mse", "extrapolation_mse",
                  "sparsity_error", "final_extrap_mse", "steps", "sparsity_step"):
            row[c] = _float(row[c])
        row["solved_at"] = None if row["solved_at"] in ("", "None") else _float(row["solved_at"])
        rows.append(row)
    return rows


def summary(rows, config):
    """`summarize_runs` in sweep order, each with "reached": the seeds whose
    extrapolation MSE fell below the threshold at some logged step (those
    with a solved-at step), whether or not the selected step is a success."""
    by_key = {tuple(s[k] for k in ("unit", "op", "range")): s for s in summarize_runs(rows)}
    for s in by_key.values():
        s["reached"] = 0
    for row in rows:
        if row["solved_at"] is not None and _key(row) in by_key:
            by_key[_key(row)]["reached"] += 1
    return [by_key[k] for k in config.configurations() if k in by_key]


def _percent(x):
    return f"{100 * x:.0f}"


# The published table's task: only these results can be set beside it.
PUBLISHED_RANGE = "U[1,2]:U[2,6]"


def published_comparison(summary, config, alpha=0.01):
    """Our seeds beside Madsen & Johansen's published per-seed results for the
    same row and operation (`nalu_keras.lab.published`) at the same number of
    steps, with Fisher's exact test (`compare_success`, rule "reached"): the
    seeds whose extrapolation MSE had fallen below the threshold by then.
    That quantity depends only on the first N steps of training, so a run of
    N steps measures exactly what theirs had reached after N (success itself
    depends on the model selection over their whole 5·10⁶ steps; their final
    success rate is in "published_full"). None where no published cell
    exists (another suite, range, input size or hidden size, or a unit they
    did not run)."""
    from nalu_keras.lab.published import compare_success, published_row

    row = published_row(summary["unit"])
    if (row is None or config.suite != "madsen" or summary["range"] != PUBLISHED_RANGE
            or config.input_size != 100 or config.hidden != 2):
        return None
    return compare_success(summary["reached"], summary["n"], row, summary["op"],
                           config.total_steps, alpha=alpha, rule="reached")


def steps_text(steps):
    """5000000 -> "5e6", 50000 -> "5e4", 1234 -> "1234"."""
    text = f"{steps:.3g}"
    return text.replace("e+0", "e").replace("e+", "e") if "e" in text else str(int(steps))


def _count(successes, trials):
    return f"{successes}/{trials}"


def success_grid(summaries, config):
    """A compact text grid: one line per unit, one column per op, each cell
    "successes/seeds (95 % CI of the rate)"; blank where not run."""
    cells = {(s["unit"], s["op"]): s for s in summaries}
    headers = ["unit"] + [OP_SYMBOLS.get(op, op) for op in config.ops]
    body = []
    for unit in config.units:
        line = [unit]
        for op in config.ops:
            s = cells.get((unit, op))
            line.append("" if s is None else f"{s['successes']}/{s['n']} "
                        f"({_percent(s['success_low'])}–{_percent(s['success_high'])} %)")
        body.append(line)
    return headers, body


def table(summaries, config=None):
    """(headers, body) of the summary table; with `config`, the seeds under
    the threshold by the run's last step, ours and published, Fisher's p on
    them, and the published success rate at 5·10⁶ ("—" where there is no
    published cell; "differs" where p < 0.01)."""
    headers = ["unit", "op", "range", "success % (95 % CI)", "n", "solved-at median", "sparsity error mean"]
    if config is not None:
        n = steps_text(config.total_steps)
        headers += [f"reached by {n}", f"published reached by {n}", "Fisher p", "verdict",
                    "published success @ 5e6"]
    body = []
    for s in summaries:
        line = [
            s["unit"], OP_SYMBOLS.get(s["op"], s["op"]), s["range"],
            f"{_percent(s['success_rate'])} ({_percent(s['success_low'])}–{_percent(s['success_high'])})",
            str(s["n"]), format_number(s["solved_at_median"]) if s["successes"] else "—",
            format_number(s["sparsity_mean"]) if s["sparsity_n"] else "—",
        ]
        if config is not None:
            c = published_comparison(s, config)
            line += ([str(s["reached"])] + ["—"] * 4 if c is None else [
                _count(*c["ours"]), _count(*c["published"]), f"{c['p_value']:.2g}",
                "agrees" if c["agree"] else "differs", _count(*c["published_full"])])
        body.append(line)
    return headers, body


def success_matrix(summaries, config):
    """(headers, body): success % per (unit, op) row and range-pair column,
    for sweeps over several ranges ("—" where a configuration is missing)."""
    by_key = {(s["unit"], s["op"], s["range"]): s for s in summaries}
    headers = ["unit", "op"] + [pair.replace(":", " → ") for pair in config.ranges]
    body = []
    for op in config.ops:
        for unit in config.units:
            cells = []
            for pair in config.ranges:
                s = by_key.get((unit, op, pair))
                cells.append("—" if s is None else _percent(s["success_rate"]))
            body.append([unit, OP_SYMBOLS.get(op, op)] + cells)
    return headers, body


def plot_success(summaries, config, path):
    """One panel per (range pair, op), units down the side: our success rate
    and the share of our seeds under the threshold by the last step, with
    Wilson intervals, and, where a published cell exists, the published
    share under the threshold by the same step (with its interval) and their
    success rate at 5·10⁶."""
    from nalu_keras.lab.evaluation import wilson_interval

    plt = pyplot()
    panels = [(pair, op) for pair in config.ranges for op in config.ops]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    height = max(2.6, 1.0 + 0.36 * len(config.units))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, height * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    by_key = {(s["unit"], s["op"], s["range"]): s for s in summaries}
    labelled = set()

    def mark(ax, y, successes, trials, style, label):
        rate = successes / trials
        low, high = wilson_interval(successes, trials)
        ax.errorbar([100 * rate], [y], xerr=[[100 * (rate - low)], [100 * (high - rate)]],
                    capsize=2, label=None if label in labelled else label, **style)
        labelled.add(label)

    for ax, (pair, op) in zip(axes.flat, panels):
        for k, unit in enumerate(config.units):
            s = by_key.get((unit, op, pair))
            if s is None:
                continue
            n = steps_text(config.total_steps)
            mark(ax, k - 0.2, s["successes"], s["n"], dict(fmt="o", color="C0"),
                 f"ours: success after {n}")
            mark(ax, k, s["reached"], s["n"], dict(fmt="^", color="C2"),
                 f"ours: under the threshold by {n}")
            c = published_comparison(s, config)
            if c is not None:
                mark(ax, k + 0.2, *c["published"], dict(fmt="s", color="C1", mfc="none"),
                     f"published: under the threshold by {n}")
                if config.total_steps != 5_000_000:
                    ax.plot([100 * c["published_full_share"]], [k + 0.2], "x", color="C3",
                            label=None if "full" in labelled else "published: success after 5e6")
                    labelled.add("full")
                if not c["agree"]:
                    ax.annotate("≠", (103, k), fontsize=11, color="C3", va="center")
        ax.set_yticks(range(len(config.units)))
        ax.set_yticklabels(config.units, fontsize=8)
        ax.set_ylim(len(config.units) - 0.5, -0.5)
        ax.set_xlim(-3, 108)
        ax.set_xlabel("success rate % (Wilson 95 % CI)", fontsize=8)
        ax.set_title(f"{OP_SYMBOLS.get(op, op)}   {pair}", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    handles = {}
    for ax in axes.flat[:len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        if len(panels) < rows * cols:  # a spare panel holds the legend
            spare = axes.flat[len(panels)]
            spare.set_visible(True)
            spare.axis("off")
            spare.legend(list(handles.values()), list(handles), loc="center", fontsize=8)
        else:  # beside the last panel, outside the data
            axes.flat[len(panels) - 1].legend(list(handles.values()), list(handles), fontsize=7,
                                               loc="center left", bbox_to_anchor=(1.02, 0.5))
    return save_figure(fig, path, f"{config.seeds} seeds, {config.total_steps} steps"
                       + ("; ≠: Fisher p < 0.01, ours vs published under the threshold by then"
                          if handles else ""))


def median_curves(out, config):
    """{(unit, op, range): (steps, median extrapolation MSE over seeds)}."""
    keys = set(config.configurations())
    values = {}
    for row in _read_csv(os.path.join(out, CURVES_FILE)):
        key = _key(row)
        if key in keys:
            values.setdefault(key, {}).setdefault(int(row["step"]), []).append(_float(row["extrap_mse"]))
    curves = {}
    for key, by_step in values.items():
        steps = sorted(by_step)
        curves[key] = (np.array(steps), np.array([np.nanmedian(by_step[s]) if np.any(np.isfinite(by_step[s]))
                                                   else np.nan for s in steps]))
    return curves


def plot_curves(out, config, path):
    plt = pyplot()
    curves = median_curves(out, config)
    panels = [(op, pair) for pair in config.ranges for op in config.ops]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (op, pair) in zip(axes.flat, panels):
        for unit in config.units:
            if (unit, op, pair) in curves:
                steps, median = curves[(unit, op, pair)]
                ax.plot(steps, np.where(median > 0, median, np.nan), label=unit)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("extrapolation MSE (median over seeds)")
        ax.set_title(f"{OP_SYMBOLS.get(op, op)}  {pair}", fontsize=9)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return save_figure(fig, path, "Extrapolation MSE during training")


def write_report(config, out):
    """bench_table.md and both PNGs from the CSVs; returns (terminal text, paths)."""
    summaries = summary(load_runs(out, config), config)
    headers, body = table(summaries, config)
    md = os.path.join(out, TABLE_FILE)
    with open(md, "w", encoding="utf-8") as handle:
        handle.write(
            ("# Primer single-module benchmark\n\n" if config.suite == "primer"
             else "# Madsen & Johansen arithmetic benchmark\n\n")
            + f"Schedule {config.schedule}: {config.total_steps} steps, log every {config.log_interval}, "
            f"{config.seeds} seeds, Adam lr {config.learning_rate}"
            + (f" (NPU, RealNPU {config.npu_learning_rate})" if any(u in POWER_UNITS for u in config.units) else "")
            + f", batch {config.batch_size}, {config.model_text()}, preset {config.preset} "
            f"(Adam in {config.adam[0]}'s form, ε = {config.adam[1]:g}), "
            + ("each seed's own subsets" if config.subsets == "per-seed"
               else f"the subsets of task seed {config.task_seed}")
            + ". Success: extrapolation MSE at the step of lowest "
            "validation MSE below the ε = 1e-5 threshold. Solved-at median and sparsity "
            "error mean over successful seeds; sparsity error at the selected step. "
            "Reached by N: seeds whose extrapolation MSE fell below the threshold at some "
            "logged step up to the last (a quantity of the first N steps alone), ours and "
            "in Madsen & Johansen's published per-seed results (ICLR 2020, Table 1; "
            "`nalu_keras.lab.published`) at the same N; Fisher's exact test on them, "
            "\"differs\" where p < 0.01; and their success rate after their full 5·10⁶ "
            "steps.\n\n"
            + markdown_table(headers, body) + "\n"
        )
        if len(config.ranges) > 1:
            handle.write("\n## Success rate (%) per range pair (interpolation → extrapolation)\n\n"
                         + markdown_table(*success_matrix(summaries, config)) + "\n")
    paths = [os.path.join(out, RUNS_FILE), os.path.join(out, CURVES_FILE), md,
             plot_success(summaries, config, os.path.join(out, SUCCESS_PNG)),
             plot_curves(out, config, os.path.join(out, CURVES_PNG))]
    return text_table(headers, body), paths
