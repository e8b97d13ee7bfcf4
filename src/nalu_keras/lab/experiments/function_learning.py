"""Table 1 of the NALU paper: simple function learning, static and recurrent.

Static task: x ∈ R^100, a and b are sums of two overlapping slices of x, the
target is op(a, b) (see `tasks.arithmetic`). Models (two layers, hidden size
2 by default): an MLP with ReLU6, a linear MLP ("None"), two stacked NACs, two
stacked NALUs.

Recurrent task: the same sums accumulated over a sequence of T input vectors,
a = Σ_t Σ x_t[slice_a], b likewise, target op(a, b) after the last step.
Trained on T = 10; extrapolation is to longer sequences (T = 100 and 1000 by
default), which makes a and b 10 and 100 times larger, and to larger values
(T = 10 with inputs from the extrapolation range, "extrap_values"). Models: an LSTM, a
SimpleRNN with ReLU, a NAC cell and a NALU cell (hidden size 2). The paper does
not say what follows the recurrent layer; here the recurrent state goes
through one more layer of the same family: Dense(1) after LSTM and ReLU RNN,
NAC(1) after the NAC cell, NALU(1) after the NALU cell.

Metric (the paper's): 100 · MSE(model) / MSE(random model), where the random
model's MSE is the median MSE of `baseline_models` (default 8) untrained
models of the same kind, built with seeds 10,000 + r and evaluated on the same
test data. 0 is perfect, 100 is as bad as an untrained model; values above 100
are possible. The table reports the median over seeds.

Solved seeds: a seed counts as solved on an extrapolation set when its
root-mean-square error there is below 1 % of the root-mean-square of the
targets (relative RMSE < 0.01), so that instability across seeds is visible.

Parameters the paper does not state (ranges, steps, optimizer) are the
config's defaults; the default ranges U[0, 1] → U[1, 5] are one of Madsen &
Johansen's published range pairs and keep b far from 0 for division; their
main setting is the preset "madsen" (U[1, 2] → U[2, 6]).
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

from nalu_keras.cells import NACCell, NALUCell
from nalu_keras.lab.experiments import parallel
from nalu_keras.lab.reporting import (
    finite_median,
    markdown_table,
    plot_grouped_bars,
    text_table,
    write_csv,
)
from nalu_keras.lab.tasks import OPERATIONS, ArithmeticTask, ValueRange
from nalu_keras.lab.tasks.arithmetic import OP_SYMBOLS
from nalu_keras.layers import NAC, NALU
from nalu_keras.validation import check_learning_rate, check_steps

STATIC_MODELS = ("ReLU6", "None", "NAC", "NALU")
RECURRENT_MODELS = ("LSTM", "ReLU", "NAC", "NALU")

RANGE_PRESETS = {
    "default": ("U[0,1]", "U[1,5]"),
    "madsen": ("U[1,2]", "U[2,6]"),
}

BASELINE_SEED = 10_000
SOLVED_RELATIVE_RMSE = 0.01


@dataclasses.dataclass(frozen=True)
class FunctionLearningConfig:
    """One Table 1 sweep (static or recurrent)."""

    kind: str = "static"
    ops: tuple = tuple(OPERATIONS)
    models: tuple = STATIC_MODELS
    seeds: int = 5
    steps: int = 20_000
    batch_size: int = 128
    learning_rate: float = 1e-2
    ranges: str = "default"
    input_size: int = 100
    subset_ratio: float = 0.25
    overlap_ratio: float = 0.5
    hidden: int = 2
    train_length: int = 10
    test_lengths: tuple = (100, 1000)
    pool_size: int = 16_384
    eval_size: int = 2_000
    baseline_models: int = 8
    task_seed: int = 0

    def __post_init__(self):
        if self.kind not in ("static", "recurrent"):
            raise ValueError(f"kind must be 'static' or 'recurrent', got {self.kind!r}")
        valid = STATIC_MODELS if self.kind == "static" else RECURRENT_MODELS
        for op in self.ops:
            if op not in OPERATIONS:
                raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPERATIONS)}")
        for model in self.models:
            if model not in valid:
                raise ValueError(
                    f"unknown {self.kind} model {model!r}; expected one of {', '.join(valid)}"
                )
        for name in ("seeds", "steps", "batch_size", "hidden", "train_length",
                     "pool_size", "eval_size", "baseline_models", "input_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._range_pair()  # validates the preset name or the explicit pair
        check_steps("steps", self.steps)
        check_learning_rate("learning_rate", self.learning_rate)
        if any(length <= 0 for length in self.test_lengths):
            raise ValueError(f"test lengths must be positive, got {self.test_lengths!r}")
        self.task("add")  # validates the subset arithmetic

    def _range_pair(self):
        """(interpolation, extrapolation) ranges as canonical strings.

        `ranges` is a preset name or an explicit "INTERP:EXTRAP" pair such as
        "U[-2,2]:U[-6,-2]∪U[2,6]" (unions allowed on either side).
        """
        if self.ranges in RANGE_PRESETS:
            return RANGE_PRESETS[self.ranges]
        parts = str(self.ranges).split(":")
        if len(parts) != 2:
            raise ValueError(
                f"unknown range preset {self.ranges!r}; expected one of "
                f"{', '.join(RANGE_PRESETS)} or an 'INTERP:EXTRAP' pair like 'U[1,2]:U[2,6]'"
            )
        return tuple(str(ValueRange.parse(part)) for part in parts)

    @property
    def interp_range(self):
        return self._range_pair()[0]

    @property
    def extrap_range(self):
        return self._range_pair()[1]

    def task(self, op):
        return ArithmeticTask(op, self.input_size, self.subset_ratio, self.overlap_ratio,
                              seed=self.task_seed)

    def test_sets(self):
        """Names of the evaluation sets: interpolation first."""
        if self.kind == "static":
            return ["interp", "extrap"]
        return (
            ["interp"]
            + [f"extrap_T{length}" for length in self.test_lengths]
            + ["extrap_values"]
        )


# -- models -----------------------------------------------------------------
def member_builder(kind, name, hidden):
    """A function (inputs, index) -> (batch, 1) output, creating new layers."""

    def static(inputs, index):
        if name == "NAC":
            return NAC(1)(NAC(hidden)(inputs))
        if name == "NALU":
            return NALU(1)(NALU(hidden)(inputs))
        activation = "relu6" if name == "ReLU6" else None
        return keras.layers.Dense(1)(keras.layers.Dense(hidden, activation=activation)(inputs))

    def recurrent(inputs, index):
        if name == "LSTM":
            return keras.layers.Dense(1)(keras.layers.LSTM(hidden)(inputs))
        if name == "ReLU":
            return keras.layers.Dense(1)(keras.layers.SimpleRNN(hidden, activation="relu")(inputs))
        if name == "NAC":
            return NAC(1)(keras.layers.RNN(NACCell(hidden))(inputs))
        return NALU(1)(keras.layers.RNN(NALUCell(hidden))(inputs))

    return static if kind == "static" else recurrent


# -- data -------------------------------------------------------------------
def make_data(config, op, which, n, seed):
    """Inputs and targets for one evaluation set (or "train")."""
    task = config.task(op)
    value_range = config.interp_range if which in ("train", "interp") else config.extrap_range
    if config.kind == "static":
        return task.sample(n, value_range, seed=seed)
    # Recurrent: "extrap_T<L>" = longer sequences of interpolation values;
    # "extrap_values" = training length, extrapolation values.
    length = config.train_length
    if which.startswith("extrap_T"):
        length = int(which[len("extrap_T"):])
        value_range = config.interp_range
    return task.sample_sequences(n, length, value_range, seed=seed)


def _eval_size(config, which):
    """Smaller evaluation sets for very long sequences (memory)."""
    if config.kind == "recurrent" and which.startswith("extrap_T"):
        length = int(which[len("extrap_T"):])
        return max(100, min(config.eval_size, config.eval_size * config.train_length * 10 // length))
    return config.eval_size


def evaluation_sets(config, op):
    """{test set name: (x, t)}, fixed by the task seed, shared by all models."""
    return {
        which: make_data(config, op, which, _eval_size(config, which), seed=[config.task_seed, i + 1])
        for i, which in enumerate(config.test_sets())
    }


def _input_shape(config):
    return (config.input_size,) if config.kind == "static" else (None, config.input_size)


# -- one configuration ------------------------------------------------------
def run_config(config, op, model_name, eval_sets=None):
    """Train `config.seeds` members of one model on one op; return rows.

    `eval_sets`, if given, is {name: (x, t)} shared across models.
    """
    eval_sets = eval_sets or evaluation_sets(config, op)
    build = member_builder(config.kind, model_name, config.hidden)
    shape = _input_shape(config)

    keras.utils.set_random_seed(BASELINE_SEED)
    baseline = parallel.parallel_model(build, config.baseline_models, shape)
    baseline_mse = {
        which: finite_median(parallel.member_mse(baseline, x, t))
        for which, (x, t) in eval_sets.items()
    }

    keras.utils.set_random_seed(list(OPERATIONS).index(op) * 100 + list(config.models).index(model_name))
    model = parallel.parallel_model(build, config.seeds, shape)
    x_train, t_train = make_data(config, op, "train", config.pool_size, seed=[config.task_seed, 0])
    losses = parallel.train(model, x_train, t_train, config.steps, config.batch_size,
                            config.learning_rate)
    mse = {which: parallel.member_mse(model, x, t) for which, (x, t) in eval_sets.items()}
    target_rms = {which: float(np.sqrt(np.mean(np.asarray(t, np.float64) ** 2)))
                  for which, (_, t) in eval_sets.items()}

    rows = []
    for seed in range(config.seeds):
        row = {
            "kind": config.kind,
            "op": op,
            "model": model_name,
            "seed": seed,
            "steps": config.steps,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "hidden": config.hidden,
            "interp_range": config.interp_range,
            "extrap_range": config.extrap_range,
            "input_size": config.input_size,
            "train_length": config.train_length if config.kind == "recurrent" else "",
            "backend": keras.backend.backend(),
            "final_loss_sum": float(losses[-1]),
        }
        for which in eval_sets:
            value = float(mse[which][seed])
            row[f"{which}_mse"] = value
            row[f"{which}_baseline_mse"] = baseline_mse[which]
            row[f"{which}_norm"] = normalized_error(value, baseline_mse[which])
            with np.errstate(invalid="ignore"):
                relative = np.sqrt(value) / target_rms[which] if target_rms[which] else np.inf
            row[f"{which}_solved"] = bool(np.isfinite(relative) and relative < SOLVED_RELATIVE_RMSE)
        rows.append(row)
    return rows


def normalized_error(mse, baseline_mse):
    """100 · mse / baseline_mse; inf when the model overflowed, NaN if undefined."""
    if np.isnan(mse) or not np.isfinite(baseline_mse) or baseline_mse <= 0:
        return float("nan")
    if np.isinf(mse):
        return float("inf")
    return 100.0 * mse / baseline_mse


def run(config, progress=None):
    """Every (op, model) of the sweep; `progress(op, model)` after each."""
    rows = []
    for op in config.ops:
        eval_sets = evaluation_sets(config, op)
        for model_name in config.models:
            rows += run_config(config, op, model_name, eval_sets)
            if progress is not None:
                progress(op, model_name)
    return rows


# -- reporting ----------------------------------------------------------------
def summary(rows, config):
    """Table 1 layout: one row per op, one column per (model, test set)."""
    sets = config.test_sets()
    headers = ["op"] + [f"{m} {s}" for s in sets for m in config.models]
    body = []
    for op in config.ops:
        line = [OP_SYMBOLS[op]]
        for which in sets:
            for model in config.models:
                line.append(median_score(rows, op, model, which))
        body.append(line)
    solved_headers = ["op"] + [f"{m} {s}" for s in sets[1:] for m in config.models]
    solved = []
    for op in config.ops:
        line = [OP_SYMBOLS[op]]
        for which in sets[1:]:
            for model in config.models:
                group = [r for r in rows if r["op"] == op and r["model"] == model]
                line.append(f"{sum(r[f'{which}_solved'] for r in group)}/{len(group)}")
        solved.append(line)
    return (headers, body), (solved_headers, solved)


def median_score(rows, op, model, which):
    """Median over seeds of the normalized error on one test set.

    Overflowed runs (inf) stay in the median; only undefined (NaN) ones are
    left out.
    """
    values = np.asarray(
        [r[f"{which}_norm"] for r in rows if r["op"] == op and r["model"] == model],
        dtype=np.float64,
    )
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else float("nan")


def write_report(rows, config, out):
    """Write <kind>_runs.csv, <kind>_table.md and <kind>_extrapolation.png."""
    (headers, body), (s_headers, s_body) = summary(rows, config)
    prefix = config.kind
    paths = [write_csv(rows, os.path.join(out, f"{prefix}_runs.csv"))]
    md = os.path.join(out, f"{prefix}_table.md")
    describe = (
        f"{config.kind} task, interpolation {config.interp_range}, "
        + (f"extrapolation {config.extrap_range}" if config.kind == "static"
           else f"train length {config.train_length}, test lengths {config.test_lengths}, "
           f"and length {config.train_length} with values from {config.extrap_range}")
        + f"; {config.seeds} seeds, {config.steps} steps, Adam lr {config.learning_rate}, "
        f"batch {config.batch_size}, hidden {config.hidden}."
    )
    with open(md, "w") as handle:
        handle.write(
            f"# Table 1 ({config.kind})\n\n{describe}\n\n"
            "100 · MSE / MSE(untrained model of the same kind); median over seeds "
            "(0 is perfect, 100 is no better than untrained).\n\n"
            + markdown_table(headers, body)
            + "\n\nSeeds with relative RMSE < 1 % on each extrapolation set:\n\n"
            + markdown_table(s_headers, s_body) + "\n"
        )
    paths.append(md)
    panels = {}
    for which in config.test_sets():
        panels[which] = {
            model: [median_score(rows, op, model, which) for op in config.ops]
            for model in config.models
        }
    png = plot_grouped_bars(
        panels,
        [OP_SYMBOLS[op] for op in config.ops],
        os.path.join(out, f"{prefix}_extrapolation.png"),
        ylabel="100 · MSE / MSE(untrained), median over seeds",
        title=f"Table 1 ({config.kind}): lower is better, 100 = untrained",
    )
    paths.append(png)
    text = text_table(headers, body) + "\n\nsolved seeds (relative RMSE < 1 %):\n" + text_table(s_headers, s_body)
    return text, paths
