"""The sequential MNIST product of Madsen & Johansen (2020).

A model reads a sequence of handwritten digits, 1..9 only (a 0 would make
every later product 0), and outputs after each image the product of the
digits so far. It is trained on sequences of `train_length` (2) images from
the training images and tested on sequences of 1..`test_length` (20) images
from the test images: the outputs after the first L images of one set of
test sequences of length 20 are the predictions for length L.

Model: images → CNN (one linear output per image, ideally the digit's value)
→ a recurrent cell over those values → the running product.

- CNN: the small MNIST network, conv 20@5x5 → pool → conv 50@5x5 → pool →
  dense 500 → dense 1 (`experiments.mnist_sequences.build_encoder`, padding
  "valid" on 28x28 images, "same" on 8x8 ones), applied to every image. It
  learns from the product targets only; no image label is used in training.
- Cells: h_0 = 1 and h_t = unit(concat(x_t, h_{t-1})) with one output:
  "NMU", "NAC•" (`MulNAC`, ASCII "NAC*") and "NALU" (`NALUCell` with
  h_0 = 1). The exact solution is W = (1, 1): h_t = x_t · h_{t-1}.
- "LSTM": the baseline, `LSTM(lstm_units)` with `Dense(1)` on every step.
- "reference": the NMU cell with W fixed to the exact solution (1, 1) and
  not trainable, trained with the same budget, seeds and batches, so only
  its CNN learns. Its error is what a model with perfect arithmetic and a
  CNN trained this way gets.

Training: mean squared error of the raw products, on every step of the
training sequence (`loss_steps="all"`, default) or on the last one only
(`"last"`); Adam, `steps` batches of `batch_size` fresh training sequences.
With the same seed every model gets the same batches and the same CNN
initialization (the CNN is built first from the same random state).

Error measure. Products reach 9^20 ≈ 1.2e19, so squared errors span 40
orders of magnitude across lengths and the MSE at a length is decided by
its few largest products. The measure here is the mean absolute log10
error,

    error(L) = mean over test sequences of |log10 ŷ_L − log10 y_L|,

computed in float64 numpy from the float32 predictions (y_L >= 1 as the
digits are 1..9). 0.01 means about 2.3 % off, 0.3 a factor 2, 1 a factor
10. It is scale-free, so all lengths share one axis, and symmetric: unlike
the relative error |ŷ − y| / y, which a model predicting 0 holds at 1 for
ever, it punishes under- and over-estimates alike. A prediction that is
not positive and finite (no positive product can be estimated by it) has
an infinite log error, and so makes error(L) infinite. The rows also hold
the median absolute log10 error, the mean relative error and the MSE
(all float64).

Success. A model (seed) succeeds at length L when error(L) is no worse than
the reference model's error at L. The reference is trained with as many
seeds as the models; `criterion` says which reference value is the bar:
"max" (default), the largest reference error over its seeds, that is, the
model is within the range the exact arithmetic attains with these CNNs;
"median", the median over the reference seeds; "paired", the reference of
the same seed (same batches and CNN initialization). Reference seeds with
an infinite error set no bar; if none is finite nothing succeeds. Success rates over
seeds come with the Wilson 95 % interval (`evaluation.wilson_interval`).

Madsen & Johansen describe this task; budget, batch size, learning rate,
loss steps and the LSTM size are this module's choices
(`SequentialProductConfig`).

MNIST: Yann LeCun, Corinna Cortes, Christopher J. C. Burges; distributed by
the Keras and TensorFlow projects under the Creative Commons
Attribution-Share Alike 3.0 license.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np

from nalu_keras.cells import ArithmeticCell, NALUCell
from nalu_keras.lab.data.mnist import SOURCES, load_digit_images
from nalu_keras.lab.data.sequences import make_sequences
from nalu_keras.lab.evaluation import wilson_interval
from nalu_keras.lab.experiments.mnist_sequences import (
    PADDINGS,
    EachStep,
    MnistSequenceConfig,
    build_encoder,
)
from nalu_keras.lab.reporting import markdown_table, pyplot, save_figure, text_table, write_csv
from nalu_keras.layers import NMU, MulNAC
from nalu_keras.validation import check_learning_rate, check_steps

MODELS = ("NMU", "NAC•", "NALU", "LSTM")
REFERENCE = "reference"
ALIASES = {"NAC*": "NAC•", "MULNAC": "NAC•", "NAC•": "NAC•", "NMU": "NMU", "NALU": "NALU",
           "LSTM": "LSTM"}
DIGITS = tuple(range(1, 10))
CRITERIA = ("max", "median", "paired")
LOSS_STEPS = ("all", "last")
TABLE_LENGTHS = (1, 2, 3, 4, 5, 10, 15, 20)


def canonical_model(name):
    """"NAC*" / "MulNAC" → "NAC•"; the other names as they are (case-insensitive)."""
    key = str(name).strip().upper()
    if key not in ALIASES:
        raise ValueError(
            f"unknown model {name!r}; expected one of {', '.join(MODELS)} (ASCII: NAC*)"
        )
    return ALIASES[key]


def _is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


@dataclasses.dataclass(frozen=True)
class SequentialProductConfig:
    """One sequential-product run: every model and the reference, every seed.

    Attributes:
        models: any of "NMU", "NAC•" (or "NAC*"), "NALU", "LSTM"; the
            reference is always trained as well.
        seeds: models per kind, seeds 0..seeds-1.
        steps, batch_size, learning_rate: Adam budget (per model).
        train_length: training sequence length (2).
        test_length: the longest test length; every length 1..test_length
            is scored.
        test_sequences: test sequences (of length `test_length`).
        lstm_units: the LSTM baseline's size.
        loss_steps: "all" (every step's running product) or "last".
        criterion: "max", "median" or "paired" (see the module docstring).
        encoder_filters, encoder_dense, kernel_size, padding: the CNN.
        digits_source, mnist_path: the images (`load_digit_images`).
        data_seed: seeds the training batches and the test sequences.
    """

    models: tuple = MODELS
    seeds: int = 5
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    train_length: int = 2
    test_length: int = 20
    test_sequences: int = 1000
    lstm_units: int = 32
    loss_steps: str = "all"
    criterion: str = "max"
    encoder_filters: tuple = (20, 50)
    encoder_dense: int = 500
    kernel_size: int = 5
    padding: str = "auto"
    digits_source: str = "auto"
    mnist_path: str | None = None
    data_seed: int = 0

    def __post_init__(self):
        if not self.models:
            raise ValueError(f"models must not be empty; choose from {', '.join(MODELS)}")
        models = tuple(canonical_model(m) for m in self.models)
        if len(set(models)) != len(models):
            raise ValueError(f"models lists a model twice: {', '.join(models)}")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "encoder_filters", tuple(self.encoder_filters))
        for name in ("seeds", "steps", "batch_size", "train_length", "test_length",
                     "test_sequences", "lstm_units", "encoder_dense", "kernel_size"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_steps("steps", self.steps)
        check_learning_rate("learning_rate", self.learning_rate)
        if self.loss_steps not in LOSS_STEPS:
            raise ValueError(f"loss_steps must be one of {', '.join(LOSS_STEPS)}, "
                             f"got {self.loss_steps!r}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, "
                             f"got {self.criterion!r}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        if self.digits_source not in SOURCES:
            raise ValueError(f"digits_source must be one of {', '.join(SOURCES)}, "
                             f"got {self.digits_source!r}")
        if self.mnist_path is not None and self.digits_source == "sklearn":
            raise ValueError("mnist_path applies to MNIST only; drop it or use digits_source "
                             "'auto' or 'mnist'")
        if isinstance(self.data_seed, bool) or not isinstance(self.data_seed, int) \
                or self.data_seed < 0:
            raise ValueError(f"data_seed must be a non-negative integer, got {self.data_seed!r}")
        self.encoder_config()  # validates the CNN fields

    @property
    def all_models(self):
        """The models and, last, the reference."""
        return self.models + (REFERENCE,)

    def encoder_config(self):
        """The CNN settings in the form `mnist_sequences.build_encoder` reads."""
        return MnistSequenceConfig(encoder_filters=self.encoder_filters,
                                   encoder_dense=self.encoder_dense,
                                   kernel_size=self.kernel_size, padding=self.padding)

    def load_images(self):
        """The digit images this configuration names (raises DataError)."""
        images = load_digit_images(self.digits_source, path=self.mnist_path)
        return images.require_digits(DIGITS, "the sequential product")


# -- models -------------------------------------------------------------------------
def reference_unit():
    """The exact product cell's unit: NMU with W = (1, 1), not trainable."""
    return NMU(1, w_initializer="ones", trainable=False, name="exact_nmu")


def build_core(config, model_name):
    """(batch, time, 1) digit values → (batch, time, 1) running products."""
    inputs = keras.Input((None, 1), name="digit_values")
    if model_name == "LSTM":
        x = keras.layers.LSTM(config.lstm_units, return_sequences=True)(inputs)
        x = keras.layers.Dense(1)(x)
    else:
        cell = {
            "NMU": lambda: ArithmeticCell(NMU(1)),
            "NAC•": lambda: ArithmeticCell(MulNAC(1)),
            "NALU": lambda: NALUCell(1, initial_state_value=1.0),
            REFERENCE: lambda: ArithmeticCell(reference_unit(), trainable=False),
        }[model_name]()
        x = keras.layers.RNN(cell, return_sequences=True, name="cell")(inputs)
    return keras.Model(inputs, x, name=f"{model_name}_core".replace("•", "*"))


def build_models(config, model_name, image_shape):
    """(full model, encoder, core); the encoder is built first."""
    encoder = build_encoder(config.encoder_config(), image_shape, 1)
    core = build_core(config, model_name)
    images = keras.Input((None,) + tuple(image_shape), name="images")
    full = keras.Model(images, core(EachStep(encoder)(images)),
                       name=f"product_{model_name}".replace("•", "*"))
    return full, encoder, core


def arithmetic_unit(core):
    """The arithmetic unit inside a core (None for the LSTM)."""
    for layer in core.layers:
        cell = getattr(layer, "cell", None)
        if isinstance(cell, ArithmeticCell):
            return cell.unit
    return None


# -- data ---------------------------------------------------------------------------
class _Batches(keras.utils.PyDataset):
    """Training batches: images (B, T, H, W, 1), running products (B, T, 1), weights (B, T)."""

    def __init__(self, x, sequences, batch_size, loss_steps):
        super().__init__()
        self.x = x
        self.indices = sequences.indices
        self.targets = sequences.running_product().astype(np.float32)[..., None]
        weights = np.ones(self.indices.shape, np.float32)
        if loss_steps == "last":
            weights[:, :-1] = 0.0
        self.weights = weights
        self.batch_size = batch_size

    def __len__(self):
        return len(self.indices) // self.batch_size

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[self.indices[rows]], self.targets[rows], self.weights[rows]


def training_sequences(config, images, seed):
    """The `steps · batch_size` training sequences of a seed (the same for every model)."""
    return make_sequences(images, "train", config.steps * config.batch_size, config.train_length,
                          seed=[config.data_seed, 0, seed], digits=DIGITS)


def test_sequences(config, images):
    """The test sequences (length `test_length`), shared by every model and seed."""
    return make_sequences(images, "test", config.test_sequences, config.test_length,
                          seed=[config.data_seed, 1], digits=DIGITS)


# -- evaluation ---------------------------------------------------------------------
PREDICT_BATCH = 500


def predict(model, x):
    """`model.predict` on rows padded to a multiple of `PREDICT_BATCH` (one
    batch shape, so one compilation), float64, the padding rows dropped."""
    x = np.asarray(x)
    n = len(x)
    padded = np.zeros((-(-n // PREDICT_BATCH) * PREDICT_BATCH,) + x.shape[1:], x.dtype)
    padded[:n] = x
    return np.asarray(model.predict(padded, batch_size=PREDICT_BATCH, verbose=0),
                      np.float64)[:n]


def running_outputs(core, features, indices):
    """The core's output after every step, float64 (n, L), from per-image features."""
    return predict(core, features[np.asarray(indices)]).reshape(len(indices), -1)


def length_errors(outputs, targets):
    """Per length L = 1..T, from (n, T) predictions and positive targets:
    {"error": mean |log10 ŷ − log10 y|, "median_log_error",
    "relative_error": mean |ŷ − y| / y, "mse"}, each a float64 array of
    length T. A prediction that is not positive and finite has an infinite
    log error (and an infinite relative and squared error if not finite).
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        usable = np.isfinite(outputs) & (outputs > 0)
        log_error = np.where(usable, np.abs(np.log10(np.where(usable, outputs, 1.0))
                                            - np.log10(targets)), np.inf)
        absolute = np.where(np.isfinite(outputs), np.abs(outputs - targets), np.inf)
        return {
            "error": np.mean(log_error, axis=0),
            "median_log_error": np.median(log_error, axis=0),
            "relative_error": np.mean(absolute / targets, axis=0),
            "mse": np.mean(absolute ** 2, axis=0),
        }


def digit_scores(encoder, images):
    """(mean |CNN output − digit|, fraction with rint(output) == digit) on test digits 1..9."""
    keep = np.isin(images.y_test, DIGITS)
    values = predict(encoder, images.x_test[keep]).reshape(-1)
    labels = images.y_test[keep].astype(np.float64)
    return float(np.mean(np.abs(values - labels))), float(np.mean(np.rint(values) == labels))


def unit_weights(core):
    """{"W_x": ..., "W_h": ...}: the unit's effective weights on the image value and the state."""
    unit = arithmetic_unit(core)
    if unit is None:
        return {"W_x": "", "W_h": ""}
    weights = unit.effective_weights()
    w = np.asarray(weights.get("W"), dtype=np.float64).reshape(-1)
    return {"W_x": float(w[0]), "W_h": float(w[1])}


def train_model(config, images, model_name, seed, progress=None):
    """Build and train one model; return (full model, encoder, core, info).

    info: {"final_loss", "train_seconds"}. For the reference, the unit's
    weights are checked to be unchanged by training (RuntimeError if not).
    """
    keras.utils.set_random_seed(config.data_seed * 1_000_003 + seed)
    model, encoder, core = build_models(config, model_name, images.image_shape)
    unit = arithmetic_unit(core)
    before = [np.array(w) for w in unit.get_weights()] if unit is not None else []
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    batches = _Batches(images.x_train, training_sequences(config, images, seed),
                       config.batch_size, config.loss_steps)
    callbacks = [_StepProgress(progress)] if progress is not None else []
    start = time.perf_counter()
    history = model.fit(batches, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
    seconds = time.perf_counter() - start
    if model_name == REFERENCE:
        after = unit.get_weights()
        if not all(np.array_equal(a, b) for a, b in zip(before, after)):
            raise RuntimeError("the reference model's arithmetic weights changed in training")
    info = {"final_loss": float(history.history.get("loss", [np.nan])[-1]),
            "train_seconds": seconds}
    return model, encoder, core, info


def run_one(config, images, model_name, seed, tests=None, progress=None):
    """Train one model (or the reference) and score it at every length 1..test_length."""
    tests = tests if tests is not None else test_sequences(config, images)
    _, encoder, core, info = train_model(config, images, model_name, seed, progress)
    features = predict(encoder, images.x_test).astype(np.float32)
    outputs = running_outputs(core, features, tests.indices)
    targets = tests.running_product()
    errors = length_errors(outputs, targets)
    digit_mae, digit_accuracy = digit_scores(encoder, images)
    common = {
        "model": model_name, "seed": seed, "train_length": config.train_length,
        "test_sequences": len(tests), "steps": config.steps, "batch_size": config.batch_size,
        "learning_rate": config.learning_rate, "loss_steps": config.loss_steps,
        "final_loss": info["final_loss"],
        "digit_mae": digit_mae, "digit_accuracy": digit_accuracy, **unit_weights(core),
        "train_seconds": round(info["train_seconds"], 1), "dataset": images.name,
        "data_source": images.source,
        "image_size": "x".join(str(s) for s in images.image_shape[:2]),
        "padding": config.encoder_config().resolve_padding(images.image_shape),
        "backend": keras.backend.backend(),
    }
    return [{**common, "length": length,
             **{name: float(values[length - 1]) for name, values in errors.items()}}
            for length in range(1, config.test_length + 1)]


class _StepProgress(keras.callbacks.Callback):
    def __init__(self, report, every=25):
        super().__init__()
        self.report, self.every, self.pending = report, every, 0

    def on_train_batch_end(self, batch, logs=None):
        self.pending += 1
        if self.pending >= self.every:
            self.report(self.pending)
            self.pending = 0

    def on_train_end(self, logs=None):
        if self.pending:
            self.report(self.pending)
            self.pending = 0


def configurations(config):
    """Every (model, seed) trained by a run, the reference included."""
    return [(model, seed) for model in config.all_models for seed in range(config.seeds)]


def run(config, progress=None, images=None):
    """Train every (model, seed) and the reference; return scored rows.

    Rows: one per (model, seed, length) with `error`, the reference bar
    `threshold` and `success` (see `add_success`). `progress(model, seed,
    steps)` is called as training advances.
    """
    images = images if images is not None else config.load_images()
    config.encoder_config().resolve_padding(images.image_shape)  # fail early
    tests = test_sequences(config, images)
    rows = []
    for model_name, seed in configurations(config):
        report = None
        if progress is not None:
            report = lambda steps, m=model_name, s=seed: progress(m, s, steps)  # noqa: E731
        rows += run_one(config, images, model_name, seed, tests, report)
    return add_success(rows, config.criterion)


def reference_threshold(rows, criterion, length, seed=None):
    """The reference error that is the bar at `length` (see the module docstring)."""
    ref = [r for r in rows if r["model"] == REFERENCE and r["length"] == length]
    if not ref:
        raise ValueError("no reference rows: the reference model must be trained")
    if criterion == "paired":
        match = [r["error"] for r in ref if r["seed"] == seed]
        if not match:
            raise ValueError(f"no reference run with seed {seed}")
        return float(match[0])
    errors = np.asarray([r["error"] for r in ref], np.float64)
    errors = errors[np.isfinite(errors)]  # a broken reference seed sets no bar
    if not errors.size:
        return float("nan")
    return float(np.max(errors) if criterion == "max" else np.median(errors))


def add_success(rows, criterion="max"):
    """Rows with `threshold` (the reference bar at their length) and `success`
    (error finite and <= threshold); the reference's own rows included."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    out = []
    for row in rows:
        bar = reference_threshold(rows, criterion, row["length"], row["seed"])
        error = row["error"]
        out.append({**row, "criterion": criterion, "threshold": bar,
                    "success": bool(np.isfinite(error) and error <= bar)})  # NaN bar: False
    return out


# -- reporting ----------------------------------------------------------------------
def success_summary(rows, model, length):
    """(successes, seeds, (low, high) Wilson 95 % interval) at one length."""
    group = [r for r in rows if r["model"] == model and r["length"] == length]
    k = sum(r["success"] for r in group)
    return k, len(group), wilson_interval(k, len(group)) if group else (np.nan, np.nan)


def median_error(rows, model, length):
    values = np.asarray([r["error"] for r in rows if r["model"] == model
                         and r["length"] == length], np.float64)
    return float(np.median(values)) if values.size else float("nan")


def table_lengths(config):
    lengths = [n for n in TABLE_LENGTHS if n <= config.test_length]
    if config.test_length not in lengths:
        lengths.append(config.test_length)
    return lengths


def success_table(rows, config):
    headers = ["model"] + [f"L={n}" for n in table_lengths(config)]
    body = []
    for model in config.models:
        line = [model]
        for n in table_lengths(config):
            k, total, (low, high) = success_summary(rows, model, n)
            line.append(f"{k}/{total} ({100 * low:.0f}–{100 * high:.0f} %)")
        body.append(line)
    return headers, body


def error_table(rows, config):
    headers = ["model"] + [f"L={n}" for n in table_lengths(config)]
    body = [[model] + [median_error(rows, model, n) for n in table_lengths(config)]
            for model in config.all_models]
    return headers, body


def seed_table(rows, config):
    """Per (model, seed): the CNN's digit scores, the unit's weights and the
    longest L up to which every length succeeds."""
    headers = ["model", "seed", "digit MAE", "digits right", "W_x", "W_h", "succeeds up to L",
               f"error L={config.train_length}", f"error L={config.test_length}"]
    body = []
    for model in config.all_models:
        for seed in range(config.seeds):
            group = sorted((r for r in rows if r["model"] == model and r["seed"] == seed),
                           key=lambda r: r["length"])
            if not group:
                continue
            upto = 0
            for r in group:
                if not r["success"]:
                    break
                upto = r["length"]
            first = group[0]
            body.append([model, str(seed), first["digit_mae"],
                         f"{100 * first['digit_accuracy']:.1f} %",
                         first["W_x"] if first["W_x"] != "" else "—",
                         first["W_h"] if first["W_h"] != "" else "—", str(upto),
                         group[config.train_length - 1]["error"]
                         if config.train_length <= len(group) else "—",
                         group[-1]["error"]])
    return headers, body


def describe(config, rows):
    data = {(r["dataset"], r["data_source"], r["image_size"], r["padding"]) for r in rows}
    data_text = "; ".join(f"{name} {size} from {source}, padding {padding}"
                          for name, source, size, padding in sorted(data)) or "no runs"
    return (f"Data: {data_text}; digits 1..9. Trained on length {config.train_length} "
            f"(training images), tested on lengths 1..{config.test_length} "
            f"({config.test_sequences} sequences of test images); {config.seeds} seed(s) per "
            f"model, {config.steps} steps of {config.batch_size} sequences, Adam lr "
            f"{config.learning_rate}, loss on {config.loss_steps} steps; success criterion: "
            f"{config.criterion} of the reference.")


def plot(rows, config, path):
    plt = pyplot()
    lengths = np.arange(1, config.test_length + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.3))
    for model in config.all_models:
        errors = [median_error(rows, model, n) for n in lengths]
        style = dict(color="black", linestyle="--") if model == REFERENCE else {}
        left.plot(lengths, errors, marker="o", markersize=3, label=model, **style)
        if model == REFERENCE:
            continue
        rates, lows, highs = [], [], []
        for n in lengths:
            k, total, (low, high) = success_summary(rows, model, n)
            rates.append(k / total)
            lows.append(low)
            highs.append(high)
        line, = right.plot(lengths, np.multiply(rates, 100), marker="o", markersize=3, label=model)
        right.fill_between(lengths, np.multiply(lows, 100), np.multiply(highs, 100),
                           color=line.get_color(), alpha=0.15)
    for ax in (left, right):
        ax.axvline(config.train_length, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("sequence length L")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    left.set_yscale("log")
    left.set_ylabel("mean |log10 ŷ − log10 y|, median over seeds")
    left.set_title("Error of the running product")
    right.set_ylabel("success rate (%), Wilson 95 % band")
    right.set_ylim(-3, 103)
    right.set_title(f"Success: error <= reference ({config.criterion})")
    return save_figure(fig, path, title=f"Sequential MNIST product, trained on length "
                                        f"{config.train_length}")


def write_report(rows, config, out):
    """Write product_runs.csv, product_table.md and product.png; return (text, paths)."""
    paths = [write_csv(rows, os.path.join(out, "product_runs.csv"))]
    s_headers, s_body = success_table(rows, config)
    e_headers, e_body = error_table(rows, config)
    d_headers, d_body = seed_table(rows, config)
    md = os.path.join(out, "product_table.md")
    with open(md, "w") as handle:
        handle.write(
            "# Sequential MNIST product\n\n" + describe(config, rows) + "\n\n"
            "Successes over seeds at each length (Wilson 95 % interval):\n\n"
            + markdown_table(s_headers, s_body)
            + "\n\nError: mean |log10 ŷ − log10 y| over the test sequences, median over "
            "seeds:\n\n"
            + markdown_table(e_headers, e_body)
            + "\n\nPer seed (digit MAE / digits right: the CNN alone on the test digits 1..9):\n\n"
            + markdown_table(d_headers, d_body) + "\n"
        )
    paths.append(md)
    paths.append(plot(rows, config, os.path.join(out, "product.png")))
    text = (text_table(s_headers, s_body) + "\n\nmean |log10 error|, median over seeds:\n"
            + text_table(e_headers, e_body))
    return text, paths
