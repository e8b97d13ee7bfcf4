"""A short, real demonstration: NAC and NALU against an MLP on a+b and a*b.

Each model (100 -> 2 -> 1) is trained on inputs drawn from the interpolation
range and evaluated on it and on an extrapolation range, then on inputs of
growing magnitude for the plot. One row per run is written as tidy CSV.

Reported per run:
- `interp_mse`, `extrap_mse`: mean squared error on 10,000 fresh samples.
- `extrap_norm`: 100 · MSE(trained) / MSE(the same model at its random
  initialization, before training), on the extrapolation set; 0 is perfect,
  100 is no better than the untrained model (the NALU paper's Table 1 scale).
- `scale_<s>_rel_err`: mean |y − t| / mean |t| on inputs from U[s, 2s].
"""

from __future__ import annotations

import dataclasses
import math
import os

import keras
import numpy as np

from nalu_keras.experiments.models import STATIC_MODELS, static_model
from nalu_keras.reporting import (
    finite_median,
    group_rows,
    markdown_table,
    plot_lines,
    text_table,
    write_csv,
)
from nalu_keras.tasks import OPERATIONS, ArithmeticTask, ValueRange

EVAL_SIZE = 10_000
TRAIN_POOL = 16_384


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Everything that defines one demo sweep."""

    ops: tuple = ("add", "mul")
    models: tuple = ("NAC", "NALU", "ReLU6")
    seeds: int = 3
    steps: int = 5_000
    batch_size: int = 128
    learning_rate: float = 1e-2
    train_range: str = "U[1,2]"
    extrap_range: str = "U[2,6]"
    scales: tuple = (1, 3, 10, 30, 100, 300, 1000)
    input_size: int = 100
    hidden: int = 2
    task_seed: int = 0

    def __post_init__(self):
        for op in self.ops:
            if op not in OPERATIONS:
                raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPERATIONS)}")
        for model in self.models:
            if model not in STATIC_MODELS:
                raise ValueError(
                    f"unknown model {model!r}; expected one of {', '.join(STATIC_MODELS)}"
                )
        for name in ("seeds", "steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        ValueRange.parse(self.train_range)
        ValueRange.parse(self.extrap_range)

    def runs(self):
        """Every (op, model, seed) of the sweep, in a fixed order."""
        return [
            (op, model, seed)
            for op in self.ops
            for model in self.models
            for seed in range(self.seeds)
        ]


def _mse(model, x, t):
    y = model.predict(x, batch_size=2048, verbose=0)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean((y.astype(np.float64) - t) ** 2)), y


def run_one(config, op, model_name, seed):
    """Train one model on one op with one seed; return its result row."""
    task = ArithmeticTask(op, input_size=config.input_size, seed=config.task_seed)
    keras.utils.set_random_seed(seed)
    model = static_model(model_name, config.input_size, config.hidden)
    x_train, t_train = task.sample(TRAIN_POOL, config.train_range, seed=[seed, 1])
    x_int, t_int = task.sample(EVAL_SIZE, config.train_range, seed=[seed, 2])
    x_ext, t_ext = task.sample(EVAL_SIZE, config.extrap_range, seed=[seed, 3])
    baseline_mse, _ = _mse(model, x_ext, t_ext)

    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="mse",
        steps_per_execution=min(100, config.steps),
    )
    batches_per_epoch = TRAIN_POOL // config.batch_size
    history = model.fit(
        x_train,
        t_train,
        batch_size=config.batch_size,
        epochs=math.ceil(config.steps / batches_per_epoch),
        steps_per_epoch=min(batches_per_epoch, config.steps),
        shuffle=True,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    final_loss = float(history.history["loss"][-1])
    interp_mse, _ = _mse(model, x_int, t_int)
    extrap_mse, _ = _mse(model, x_ext, t_ext)
    row = {
        "op": op,
        "model": model_name,
        "seed": seed,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "train_range": str(ValueRange.parse(config.train_range)),
        "extrap_range": str(ValueRange.parse(config.extrap_range)),
        "input_size": config.input_size,
        "hidden": config.hidden,
        "task_seed": config.task_seed,
        "backend": keras.backend.backend(),
        "final_train_loss": final_loss,
        "interp_mse": interp_mse,
        "extrap_mse": extrap_mse,
        "baseline_extrap_mse": baseline_mse,
        "extrap_norm": normalized_error(extrap_mse, baseline_mse),
    }
    for scale in config.scales:
        x_s, t_s = task.sample(EVAL_SIZE // 10, f"U[{scale},{2 * scale}]", seed=[seed, 4, scale])
        y_s = model.predict(x_s, batch_size=2048, verbose=0).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            row[f"scale_{scale}_rel_err"] = float(
                np.mean(np.abs(y_s - t_s)) / np.mean(np.abs(t_s.astype(np.float64)))
            )
    return row


def normalized_error(mse, baseline_mse):
    """100 · mse / baseline_mse (NaN when either is not finite or baseline is 0)."""
    if not (np.isfinite(mse) and np.isfinite(baseline_mse)) or baseline_mse == 0:
        return float("nan")
    return 100.0 * mse / baseline_mse


def run(config, progress=None):
    """Run the whole sweep; `progress(row)` is called after each run."""
    rows = []
    for op, model_name, seed in config.runs():
        row = run_one(config, op, model_name, seed)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def _median(rows, op, model, column):
    return finite_median([r[column] for r in rows if r["op"] == op and r["model"] == model])


def _solved(row, scales, tolerance=0.01):
    values = [row[f"scale_{s}_rel_err"] for s in scales]
    return all(np.isfinite(v) and v < tolerance for v in values)


def summary(rows, config):
    """(headers, body): per op and model, medians over seeds and solved seeds.

    A seed counts as solved when its relative error is below 1 % at every
    evaluated input scale.
    """
    headers = [
        "op",
        "model",
        "interp MSE",
        "extrap MSE",
        "extrap (% of untrained)",
        f"rel. err at s={config.scales[-1]}",
        "seeds < 1% err at all s",
    ]
    body = []
    for (op, model), group in group_rows(rows, ("op", "model")).items():
        solved = sum(_solved(r, config.scales) for r in group)
        body.append(
            [
                op,
                model,
                _median(rows, op, model, "interp_mse"),
                _median(rows, op, model, "extrap_mse"),
                _median(rows, op, model, "extrap_norm"),
                _median(rows, op, model, f"scale_{config.scales[-1]}_rel_err"),
                f"{solved}/{len(group)}",
            ]
        )
    return headers, body


def write_report(rows, config, out):
    """Write runs.csv, summary.md and extrapolation.png; return (text table, paths)."""
    headers, body = summary(rows, config)
    csv_path = write_csv(rows, os.path.join(out, "runs.csv"))
    md_path = os.path.join(out, "summary.md")
    with open(md_path, "w") as handle:
        handle.write(
            "# nalu-keras demo\n\n"
            f"Trained on {config.train_range}, extrapolation on {config.extrap_range}; "
            f"{config.steps} steps, {config.seeds} seeds, backend "
            f"{rows[0]['backend']}.\n\n" + markdown_table(headers, body) + "\n"
        )
    series = {
        f"{op} (trained on {config.train_range})": {
            model: (
                list(config.scales),
                [_median(rows, op, model, f"scale_{s}_rel_err") for s in config.scales],
            )
            for model in config.models
        }
        for op in config.ops
    }
    png_path = plot_lines(
        series,
        os.path.join(out, "extrapolation.png"),
        xlabel="s (inputs drawn from U[s, 2s])",
        ylabel="relative error, median over seeds",
    )
    return text_table(headers, body), [csv_path, md_path, png_path]
