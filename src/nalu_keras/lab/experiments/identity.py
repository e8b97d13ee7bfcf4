"""Fig. 1 of the NALU paper: MLPs learn the identity but fail to extrapolate it.

An MLP (3 hidden layers of 8 units by default) learns y = x on scalars from
U[-5, 5]; its mean absolute error is then measured for x over [-20, 20]. The
paper plots this for 15 activation functions (the PyTorch names in its
legend). Here every activation comes from Keras:

| paper name | Keras | parameters (PyTorch defaults where Keras differs) |
|---|---|---|
| Hardtanh | `hard_tanh` | clips to [-1, 1] |
| Sigmoid | `sigmoid` | |
| ReLU6 | `relu6` | |
| Tanh | `tanh` | |
| Tanhshrink | `tanh_shrink` | x − tanh(x) |
| Hardshrink | `hard_shrink` | threshold 0.5 |
| LeakyReLU | `leaky_relu` | negative slope 0.01 (Keras' default is 0.2) |
| Softshrink | `soft_shrink` | threshold 0.5 |
| Softsign | `softsign` | |
| Threshold | `threshold` | threshold 0.1, value 20 (not stated in the paper; the example of PyTorch's documentation) |
| ReLU | `relu` | |
| PReLU | `keras.layers.PReLU` | one learned slope per unit, initialized at 0.25 |
| Softplus | `softplus` | |
| ELU | `elu` | alpha 1 |
| SELU | `selu` | |

Training (not stated in the paper; common in reproductions): Adam, learning
rate 1e-2, 10,000 steps of batch 128 from a pool of 4,096 samples, several
models per activation (trained side by side, see `experiments.parallel`).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np

from nalu_keras.lab.experiments import parallel
from nalu_keras.lab.reporting import markdown_table, pyplot, save_figure, text_table, write_csv
from nalu_keras.lab.tasks import ValueRange
from nalu_keras.lab.tasks import identity as identity_task
from nalu_keras.validation import check_learning_rate, check_steps

ACTIVATIONS = {
    "Hardtanh": keras.activations.hard_tanh,
    "Sigmoid": keras.activations.sigmoid,
    "ReLU6": keras.activations.relu6,
    "Tanh": keras.activations.tanh,
    "Tanhshrink": keras.activations.tanh_shrink,
    "Hardshrink": functools.partial(keras.activations.hard_shrink, threshold=0.5),
    "LeakyReLU": functools.partial(keras.activations.leaky_relu, negative_slope=0.01),
    "Softshrink": functools.partial(keras.activations.soft_shrink, threshold=0.5),
    "Softsign": keras.activations.softsign,
    "Threshold": functools.partial(keras.activations.threshold, threshold=0.1, default_value=20.0),
    "ReLU": keras.activations.relu,
    "PReLU": "prelu",
    "Softplus": keras.activations.softplus,
    "ELU": keras.activations.elu,
    "SELU": keras.activations.selu,
}


@dataclasses.dataclass(frozen=True)
class IdentityConfig:
    """One Fig. 1 sweep."""

    activations: tuple = tuple(ACTIVATIONS)
    models: int = 8
    hidden: tuple = (8, 8, 8)
    steps: int = 10_000
    batch_size: int = 128
    learning_rate: float = 1e-2
    train_range: str = identity_task.TRAIN_RANGE
    test_low: float = identity_task.TEST_INTERVAL[0]
    test_high: float = identity_task.TEST_INTERVAL[1]
    test_points: int = 401
    pool_size: int = 4096
    seed: int = 0

    def __post_init__(self):
        unknown = [a for a in self.activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(
                f"unknown activation {unknown[0]!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        for name in ("models", "steps", "batch_size", "pool_size", "test_points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_steps("steps", self.steps)
        check_learning_rate("learning_rate", self.learning_rate)
        ValueRange.parse(self.train_range)


def _mlp_member(activation, hidden):
    def build(inputs, index):
        h = inputs
        for width in hidden:
            if ACTIVATIONS[activation] == "prelu":
                h = keras.layers.Dense(width)(h)
                h = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))(h)
            else:
                h = keras.layers.Dense(width, activation=ACTIVATIONS[activation])(h)
        return keras.layers.Dense(1)(h)

    return build


def run_activation(config, activation):
    """Train `config.models` MLPs with one activation.

    Returns (run rows, mean-absolute-error curve over the test grid).
    """
    train_range = ValueRange.parse(config.train_range)
    index = list(ACTIVATIONS).index(activation)
    keras.utils.set_random_seed(config.seed * 1000 + index)
    model = parallel.parallel_model(
        _mlp_member(activation, config.hidden), config.models, (1,), name=activation
    )
    x_train, t_train = identity_task.sample(config.pool_size, train_range, seed=[config.seed, index])
    losses = parallel.train(
        model, x_train, t_train, config.steps, config.batch_size, config.learning_rate
    )
    grid = identity_task.grid(config.test_low, config.test_high, config.test_points)
    abs_err = np.abs(parallel.member_predictions(model, grid) - grid)
    grid = grid[:, 0]
    inside = (grid >= train_range.low) & (grid <= train_range.high)
    rows = []
    for member in range(config.models):
        rows.append(
            {
                "activation": activation,
                "model": member,
                "hidden": "x".join(map(str, config.hidden)),
                "steps": config.steps,
                "batch_size": config.batch_size,
                "learning_rate": config.learning_rate,
                "train_range": str(train_range),
                "seed": config.seed,
                "backend": keras.backend.backend(),
                "final_loss_sum": float(losses[-1]),
                "interp_mae": float(np.mean(abs_err[inside, member])),
                "extrap_mae": float(np.mean(abs_err[~inside, member])),
            }
        )
    curve = [
        {"activation": activation, "x": float(x), "mae": float(e)}
        for x, e in zip(grid, abs_err.mean(axis=1))
    ]
    return rows, curve


def run(config, progress=None):
    """All activations; returns (run rows, curve rows)."""
    rows, curves = [], []
    for activation in config.activations:
        r, c = run_activation(config, activation)
        rows += r
        curves += c
        if progress is not None:
            progress(activation)
    return rows, curves


def summary(rows):
    """Per activation: mean interpolation and extrapolation MAE over models."""
    headers = ["activation", "models", "MAE in train range", "MAE outside", "ratio"]
    body = []
    for activation in dict.fromkeys(r["activation"] for r in rows):
        group = [r for r in rows if r["activation"] == activation]
        interp = float(np.mean([r["interp_mae"] for r in group]))
        extrap = float(np.mean([r["extrap_mae"] for r in group]))
        body.append([activation, str(len(group)), interp, extrap, extrap / interp if interp else float("inf")])
    body.sort(key=lambda row: row[3])
    return headers, body


def plot(curves, config, path):
    plt = pyplot()
    train_range = ValueRange.parse(config.train_range)
    fig, ax = plt.subplots(figsize=(9.5, 5))
    cmap = plt.get_cmap("tab20")
    for i, activation in enumerate(config.activations):
        pts = [c for c in curves if c["activation"] == activation]
        ax.plot([p["x"] for p in pts], [p["mae"] for p in pts], label=activation,
                color=cmap(i % 20), linewidth=1.4)
    ax.axvspan(train_range.low, train_range.high, color="grey", alpha=0.15, label="train range")
    ax.set_xlabel("x")
    ax.set_ylabel(f"mean absolute error (mean of {config.models} models)")
    ax.set_title("MLPs learning the identity: error against x")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def write_report(rows, curves, config, out):
    """Write identity_runs.csv, identity_curve.csv, fig1.md and fig1.png."""
    headers, body = summary(rows)
    paths = [
        write_csv(rows, os.path.join(out, "identity_runs.csv")),
        write_csv(curves, os.path.join(out, "identity_curve.csv")),
    ]
    md = os.path.join(out, "fig1.md")
    with open(md, "w") as handle:
        handle.write(
            "# Fig. 1: MLPs learning the identity\n\n"
            f"{config.models} models per activation, hidden {config.hidden}, "
            f"{config.steps} steps, trained on {config.train_range}, tested on "
            f"[{config.test_low:g}, {config.test_high:g}].\n\n"
            + markdown_table(headers, body) + "\n"
        )
    paths += [md, plot(curves, config, os.path.join(out, "fig1.png"))]
    return text_table(headers, body), paths
