"""Table 2 of the NALU paper: MNIST counting and addition, and MNIST parity.

A model reads a sequence of handwritten digit images and outputs, after the
last image,

- counting: how many images of each digit class it saw (10 regression
  outputs);
- addition: the sum of the digit values (1 regression output);
- parity: whether that sum is odd (binary classification).

It is trained on sequences of `train_length` (10) images drawn from the
training images and tested on sequences of each of `lengths` (10, 100 and
1,000) drawn from the test images only (`nalu_keras.lab.data.sequences`).

Model: an image encoder applied to every image, a recurrent core over the
sequence of encodings, and a head.

- Encoder: the small MNIST CNN of the paper, conv 20@5x5 (ReLU) → 2x2 max
  pool → conv 50@5x5 (ReLU) → 2x2 max pool → dense 500 (ReLU) → dense
  `features` (linear). It is trained end to end from the sequence targets
  only; no image label is ever used. Padding: "valid" (the classic network)
  when the image is large enough for it (28x28 MNIST), "same" otherwise:
  8x8 images shrink to nothing under two valid 5x5 convolutions
  (`padding="auto"`, the default; "valid" and "same" force one).
- Core and head, with `features` = 10 for counting and 1 for addition and
  parity:
  - NAC: `RNN(NACCell(features))`; NALU: `RNN(NALUCell(features))`;
    NAU: `RNN(ArithmeticCell(NAU(features)))`. For counting and addition
    the final state is the prediction (no head), so an exact solution,
    h_t = h_{t-1} + x_t with the encoder emitting a one-hot vector
    (counting) or the digit's value (addition), holds at any length.
  - LSTM: `LSTM(lstm_units)` followed by `Dense(features)`.
  - Parity: every core is followed by the same small head,
    Dense(`head_units`, ReLU) → Dense(1), a logit, trained with binary
    cross-entropy. No unit here computes a sum mod 2 by itself, so the
    arithmetic cores can at best hold the running sum and leave the head to
    learn parity from it over the sums seen in training (0..90 at length
    10); this task is expected to fail beyond the training length for every
    core.
- Starting point (`state_init`). With the units' own initializers
  ("default") the weight from h_{t-1} to h_t starts near 0, so at first the
  output depends on the last image or two only; the quickest way to lower
  the loss is then a constant prediction of the mean target (the encoder's
  output grows to hundreds, the same for every digit), a point the
  arithmetic cores do not leave within a few thousand steps (measured: the
  loss stays at the variance of the targets). "identity" (the default
  here) starts the state-to-state block of the cell at the identity, as
  recurrent networks are often started (and as the LSTM's forget-gate bias
  of 1 starts it remembering): exactly I for the NAU, tanh(10) σ(10) ≈
  1 − 4.5e-5 on the diagonal and 0 elsewhere for the NAC and the NALU's
  additive path. The input weights, the NALU's gate and the encoder keep
  their usual initialization, so what each image contributes is still
  learned from the sequence targets alone. The LSTM's output bias starts
  at the mean training target (counting and addition), so that it, too,
  does not spend its first steps learning the targets' mean.
- Losses: mean squared error for counting and addition (targets in raw
  units, so the output scale needed at length 1,000 is 100 times that of
  training), binary cross-entropy for parity. Adam, `learning_rate`,
  `steps` batches of `batch_size` fresh training sequences (seeded: every
  model of a seed sees the same batches).

Evaluation: the trained encoder is run once over every test image; each test
sequence's encodings are gathered from that pool and only the core and head
run over the sequence (`evaluate_core`), which gives the same outputs as the
full model (tested) at a fraction of the cost for length 1,000. The test
sequences of a length are the same for every task, model and seed.

Metrics, per task and test length:

- accuracy: the fraction of test sequences whose prediction, rounded to the
  nearest integer, equals the target exactly. For counting, all ten rounded
  counts must be right (`accuracy`); `count_accuracy` is the fraction of the
  individual counts that are right. For parity, the prediction is "odd" when
  the logit is positive.
- mae: the mean absolute error, |prediction − target| averaged over
  sequences (and over the ten counts for counting); for parity, the mean of
  |P(odd) − target|. A model whose output overflowed (inf or NaN) on any
  test sequence has an infinite MAE there.
- bias (counting and addition): the mean signed error, prediction −
  target.
- state_radius, state_max_dev (arithmetic cores, once per trained model):
  the spectral radius of the trained state-to-state weight block and its
  largest distance from the identity. An error in what one image adds
  grows linearly with the length; a radius away from 1 makes the state
  grow or decay geometrically.

A reference for accuracy: an encoder that recognizes a single image with
probability q gets a whole sequence of length L right with probability about
q^L, so even 99 % per-image accuracy leaves 0.99^1000 ≈ 4e-5 at length
1,000. Mean absolute error separates the models there.

The paper states the task, the lengths, the encoder and the metrics; the
rest (core sizes, heads, losses, optimizer, budget) are this module's
choices, set in `MnistSequenceConfig`.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np

from nalu_keras.cells import ArithmeticCell, NACCell, NALUCell
from nalu_keras.lab.data.mnist import SOURCES, load_digit_images
from nalu_keras.lab.data.sequences import make_sequences
from nalu_keras.lab.reporting import markdown_table, pyplot, save_figure, text_table, write_csv
from nalu_keras.layers import NAU
from nalu_keras.validation import check_learning_rate, check_steps

TASKS = ("counting", "addition", "parity")
MODELS = ("LSTM", "NAC", "NALU", "NAU")
PADDINGS = ("auto", "valid", "same")
STATE_INITS = ("identity", "default")
#: Ŵ = M̂ on the diagonal of a NAC-family state block under state_init="identity":
#: W = tanh(10) σ(10) ≈ 1 − 4.5e-5.
IDENTITY_LOGIT = 10.0
FEATURES = {"counting": 10, "addition": 1, "parity": 1}
#: Encoded images gathered at once when evaluating long sequences.
EVAL_CHUNK = 200_000
#: Training steps whose images are gathered and fed to `model.fit` at once.
TRAIN_CHUNK = 50


@dataclasses.dataclass(frozen=True)
class MnistSequenceConfig:
    """One run of the MNIST sequence experiments (Table 2 and parity).

    Attributes:
        tasks: any of "counting", "addition", "parity".
        models: recurrent cores, any of "LSTM", "NAC", "NALU", "NAU".
        lengths: test sequence lengths.
        train_length: training sequence length.
        seeds: models per (task, core), seeds 0..seeds-1.
        steps, batch_size, learning_rate: Adam training budget.
        test_sequences: test sequences per length.
        lstm_units: the LSTM core's size.
        head_units: the parity head's hidden size.
        encoder_filters, encoder_dense, kernel_size: the CNN (paper: (20, 50),
            500, 5).
        padding: "auto", "valid" or "same" (see the module docstring).
        state_init: "identity" (arithmetic cores start by carrying their
            state over unchanged) or "default" (the units' own
            initializers); see the module docstring.
        digits_source, mnist_path: where the images come from
            (`nalu_keras.lab.data.load_digit_images`).
        data_seed: seeds the training batches and the test sequences.
    """

    tasks: tuple = TASKS
    models: tuple = MODELS
    lengths: tuple = (10, 100, 1000)
    train_length: int = 10
    seeds: int = 1
    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 1e-3
    test_sequences: int = 1000
    lstm_units: int = 64
    head_units: int = 16
    encoder_filters: tuple = (20, 50)
    encoder_dense: int = 500
    kernel_size: int = 5
    padding: str = "auto"
    state_init: str = "identity"
    digits_source: str = "auto"
    mnist_path: str | None = None
    data_seed: int = 0

    def __post_init__(self):
        for name, valid in (("tasks", TASKS), ("models", MODELS)):
            chosen = tuple(getattr(self, name))
            object.__setattr__(self, name, chosen)
            if not chosen:
                raise ValueError(f"{name} must not be empty; choose from {', '.join(valid)}")
            for item in chosen:
                if item not in valid:
                    raise ValueError(
                        f"unknown {name[:-1]} {item!r}; expected one of {', '.join(valid)}"
                    )
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"{name} lists an item twice: {', '.join(chosen)}")
        object.__setattr__(self, "lengths", tuple(self.lengths))
        object.__setattr__(self, "encoder_filters", tuple(self.encoder_filters))
        if not self.lengths:
            raise ValueError("lengths must not be empty")
        for length in self.lengths:
            if not _is_positive_int(length):
                raise ValueError(f"test lengths must be positive integers, got {self.lengths!r}")
        if len(set(self.lengths)) != len(self.lengths):
            raise ValueError(f"lengths lists a length twice: {self.lengths!r}")
        for name in ("train_length", "seeds", "steps", "batch_size", "test_sequences",
                     "lstm_units", "head_units", "encoder_dense", "kernel_size"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if len(self.encoder_filters) != 2 or not all(map(_is_positive_int, self.encoder_filters)):
            raise ValueError(
                f"encoder_filters must be two positive integers, got {self.encoder_filters!r}"
            )
        check_steps("steps", self.steps)
        check_learning_rate("learning_rate", self.learning_rate)
        if self.state_init not in STATE_INITS:
            raise ValueError(
                f"state_init must be one of {', '.join(STATE_INITS)}, got {self.state_init!r}"
            )
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        if self.digits_source not in SOURCES:
            raise ValueError(
                f"digits_source must be one of {', '.join(SOURCES)}, got {self.digits_source!r}"
            )
        if self.mnist_path is not None and self.digits_source == "sklearn":
            raise ValueError("mnist_path applies to MNIST only; drop it or use digits_source "
                             "'auto' or 'mnist'")
        if isinstance(self.data_seed, bool) or not isinstance(self.data_seed, int) or self.data_seed < 0:
            raise ValueError(f"data_seed must be a non-negative integer, got {self.data_seed!r}")

    def load_images(self):
        """The digit images this configuration names (raises DataError)."""
        return load_digit_images(self.digits_source, path=self.mnist_path)

    def resolve_padding(self, image_shape):
        """The convolution padding for images of `image_shape` (H, W, C)."""
        side = min(image_shape[:2])
        if side < 4:
            raise ValueError(f"{image_shape[0]}x{image_shape[1]} images are too small for the "
                             "encoder's two 2x2 poolings; images must be at least 4x4")
        valid_fits = ((side - self.kernel_size + 1) // 2 - self.kernel_size + 1) // 2 >= 1
        if self.padding == "auto":
            return "valid" if valid_fits else "same"
        if self.padding == "valid" and not valid_fits:
            raise ValueError(
                f"padding 'valid' needs larger images: {image_shape[0]}x{image_shape[1]} images "
                f"vanish under two {self.kernel_size}x{self.kernel_size} convolutions and pools; "
                "use padding 'same' or 'auto'"
            )
        return self.padding


def _is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


# -- models -------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="nalu_keras")
class EachStep(keras.layers.Layer):
    """Applies a layer to every time step by folding time into the batch.

    (batch, time, *shape) → (batch · time, *shape) → layer → (batch, time,
    *out_shape): one call on a large batch instead of one call per step.

    Args:
        layer: the layer (or model) to apply to each step.
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))

    def call(self, inputs, training=None):
        shape = keras.ops.shape(inputs)
        folded = keras.ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        outputs = self.layer(folded, training=training)
        return keras.ops.reshape(outputs, (shape[0], shape[1]) + tuple(outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


def build_encoder(config, image_shape, features):
    """The paper's MNIST CNN: images (H, W, C) → `features` linear outputs."""
    padding = config.resolve_padding(image_shape)
    first, second = config.encoder_filters
    k = config.kernel_size
    return keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Conv2D(first, k, padding=padding, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(second, k, padding=padding, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(config.encoder_dense, activation="relu"),
            keras.layers.Dense(features),
        ],
        name="encoder",
    )


def build_core(config, task, model_name, features, target_mean=None):
    """Core and head over encoded sequences: (batch, time, features) → outputs.

    `target_mean` (counting and addition): the LSTM's output bias starts
    there.
    """
    inputs = keras.Input((None, features), name="encoded")
    if model_name == "LSTM":
        x = keras.layers.LSTM(config.lstm_units)(inputs)
        if task != "parity":
            bias = "zeros" if target_mean is None else keras.initializers.Constant(target_mean)
            x = keras.layers.Dense(features, bias_initializer=bias, name="lstm_head")(x)
    else:
        cell = {
            "NAC": lambda: NACCell(features),
            "NALU": lambda: NALUCell(features),
            "NAU": lambda: ArithmeticCell(NAU(features)),
        }[model_name]()
        x = keras.layers.RNN(cell)(inputs)
        if config.state_init == "identity":
            start_as_accumulator(cell, features)
    if task == "parity":
        x = keras.layers.Dense(config.head_units, activation="relu")(x)
        x = keras.layers.Dense(1, name="parity_logit")(x)
    return keras.Model(inputs, x, name=f"{model_name}_core")


def start_as_accumulator(cell, features):
    """Set the state-to-state block of a built arithmetic cell to the identity.

    The cell computes h_t = unit(concat(x_t, h_{t-1})); rows `features:` of
    the unit's weight act on h_{t-1}. NAU: that block becomes exactly I. NAC
    and NALU (additive path): Ŵ = M̂ = IDENTITY_LOGIT on the diagonal and
    Ŵ = 0 off it, so W ≈ I (tanh(Ŵ) σ(M̂) reaches ±1 only in the limit).
    The input block keeps the unit's own initialization.
    """
    unit = cell.unit
    eye = np.eye(features, dtype="float32")

    def set_state_block(variable, block):
        value = np.array(keras.ops.convert_to_numpy(variable))
        value[features:] = block
        variable.assign(value)

    if isinstance(unit, NAU):
        set_state_block(unit.w, eye)
    else:
        set_state_block(unit.w_hat, IDENTITY_LOGIT * eye)
        set_state_block(unit.m_hat, IDENTITY_LOGIT * eye)


def build_models(config, task, model_name, image_shape, target_mean=None):
    """(full model, encoder, core): full = core(EachStep(encoder)(images))."""
    features = FEATURES[task]
    encoder = build_encoder(config, image_shape, features)
    core = build_core(config, task, model_name, features, target_mean)
    images = keras.Input((None,) + tuple(image_shape), name="images")
    full = keras.Model(images, core(EachStep(encoder)(images)), name=f"{task}_{model_name}")
    return full, encoder, core


def _loss(task):
    if task == "parity":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


# -- data ---------------------------------------------------------------------------
def _targets(sequences, task):
    return np.asarray(sequences.targets(task), dtype=np.float32).reshape(len(sequences), -1)


def training_sequences(config, images, task, seed):
    """All `steps · batch_size` training sequences of one (task, seed)."""
    return make_sequences(images, "train", config.steps * config.batch_size,
                          config.train_length, seed=[config.data_seed, 0, TASKS.index(task), seed])


def evaluation_sequences(config, images, length):
    """The test sequences of one length (shared by every task, model and seed)."""
    return make_sequences(images, "test", config.test_sequences, length,
                          seed=[config.data_seed, 1, length])


# -- evaluation ---------------------------------------------------------------------
def encode(encoder, x, batch_size=1024):
    """The encoder's outputs for every image of `x`: (N, features) float32."""
    return np.asarray(encoder.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def evaluate_core(core, features, indices):
    """The core's outputs for sequences of pre-computed encodings.

    Args:
        core: the model from `build_core`.
        features: (N, F) encodings of a pool of images.
        indices: (n, L) indices into that pool.

    Returns:
        (n, outputs) float32, what the full model gives for the same images.
    """
    indices = np.asarray(indices)
    rows = max(1, EVAL_CHUNK // indices.shape[1])
    outputs = [
        core.predict(features[indices[start:start + rows]], batch_size=rows, verbose=0)
        for start in range(0, len(indices), rows)
    ]
    return np.asarray(np.concatenate(outputs), dtype=np.float32)


def score(task, outputs, sequences):
    """{"accuracy", "mae"}, plus "bias" (mean signed error) for counting and
    addition and "count_accuracy" for counting, of a model's outputs."""
    target = np.asarray(sequences.targets(task), dtype=np.float64).reshape(len(sequences), -1)
    outputs = np.asarray(outputs, dtype=np.float64).reshape(target.shape)
    if task == "parity":
        with np.errstate(over="ignore"):
            probability = 1.0 / (1.0 + np.exp(-outputs))
        right = (outputs > 0) == (target == 1)
        return {"accuracy": float(np.mean(right)),
                "mae": float(np.mean(np.abs(probability - target)))}
    with np.errstate(invalid="ignore"):
        right = np.rint(outputs) == target
    error = np.where(np.isfinite(outputs), np.abs(outputs - target), np.inf)
    result = {"accuracy": float(np.mean(np.all(right, axis=1))), "mae": float(np.mean(error))}
    with np.errstate(invalid="ignore", over="ignore"):
        result["bias"] = float(np.mean(outputs - target))
    if task == "counting":
        result["count_accuracy"] = float(np.mean(right))
    return result


def state_block(core):
    """The effective weight block from h_{t-1} to h_t of an arithmetic core (None for LSTM).

    NAC and NAU: their weight W; NALU: its additive path's W (the gate and
    the multiplicative path also act on the state).
    """
    cells = [layer.cell for layer in core.layers if isinstance(layer, keras.layers.RNN)]
    if not cells or not isinstance(cells[0], ArithmeticCell):
        return None
    weight = np.asarray(keras.ops.convert_to_numpy(cells[0].unit.W), dtype=np.float64)
    return weight[weight.shape[0] - weight.shape[1]:]


def state_diagnostics(core):
    """{"state_radius": spectral radius of the state block, "state_max_dev":
    max |block − I|}; empty strings for the LSTM. A radius above 1 makes the
    state grow geometrically with the sequence length, below 1 decay."""
    block = state_block(core)
    if block is None:
        return {"state_radius": "", "state_max_dev": ""}
    radius = float(np.max(np.abs(np.linalg.eigvals(block))))
    return {"state_radius": radius,
            "state_max_dev": float(np.max(np.abs(block - np.eye(len(block)))))}


# -- one configuration --------------------------------------------------------------
def train(model, images, sequences, task, batch_size, progress=None):
    """Train on `sequences` in order, `batch_size` at a time; return the last chunk's mean loss.

    The images are gathered `TRAIN_CHUNK` steps at a time (a few hundred MB
    at most for MNIST) and fed to `model.fit`; `progress(steps)` is called
    after each chunk.
    """
    targets = _targets(sequences, task)
    steps = len(sequences) // batch_size
    loss = float("nan")
    for first in range(0, steps, TRAIN_CHUNK):
        count = min(TRAIN_CHUNK, steps - first)
        rows = slice(first * batch_size, (first + count) * batch_size)
        history = model.fit(images.x_train[sequences.indices[rows]], targets[rows],
                            batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        loss = float(history.history["loss"][-1])
        if progress is not None:
            progress(count)
    return loss


def run_one(config, images, task, model_name, seed, tests=None, progress=None):
    """Train one model and evaluate it on every test length; return its rows.

    `tests`, if given, is {length: DigitSequences} shared across runs;
    `progress(steps)` is called as training advances.
    """
    tests = tests or {length: evaluation_sequences(config, images, length) for length in config.lengths}
    keras.utils.set_random_seed(
        config.data_seed * 1_000_003 + seed * 1_000 + TASKS.index(task) * 10 + MODELS.index(model_name)
    )
    sequences = training_sequences(config, images, task, seed)
    target_mean = None if task == "parity" else _targets(sequences, task).mean(axis=0)
    model, encoder, core = build_models(config, task, model_name, images.image_shape, target_mean)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=_loss(task))
    start = time.perf_counter()
    final_loss = train(model, images, sequences, task, config.batch_size, progress)
    train_seconds = time.perf_counter() - start

    features = encode(encoder, images.x_test)
    diagnostics = state_diagnostics(core)
    rows = []
    for length, sequences in tests.items():
        outputs = evaluate_core(core, features, sequences.indices)
        rows.append({
            "task": task,
            "model": model_name,
            "seed": seed,
            "length": length,
            "train_length": config.train_length,
            "sequences": len(sequences),
            **score(task, outputs, sequences),
            "final_loss": final_loss,
            **diagnostics,
            "steps": config.steps,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "train_seconds": round(train_seconds, 1),
            "dataset": images.name,
            "data_source": images.source,
            "image_size": "x".join(str(s) for s in images.image_shape[:2]),
            "padding": config.resolve_padding(images.image_shape),
            "state_init": config.state_init if model_name != "LSTM" else "",
            "backend": keras.backend.backend(),
        })
    return rows


def configurations(config):
    """Every (task, model, seed) of a run, in order."""
    return [(task, model, seed) for task in config.tasks for model in config.models
            for seed in range(config.seeds)]


def run(config, progress=None, images=None):
    """Every (task, model, seed) of `config`; tidy rows, one per test length.

    Args:
        images: a `DigitImages`; loaded from the configuration when None.
        progress: called as `progress(task, model, seed, steps)` while
            training, `steps` being the number of steps just finished.
    """
    images = images if images is not None else config.load_images()
    config.resolve_padding(images.image_shape)  # fail early on an impossible padding
    tests = {length: evaluation_sequences(config, images, length) for length in config.lengths}
    rows = []
    for task, model_name, seed in configurations(config):
        report = None
        if progress is not None:
            report = lambda steps, t=task, m=model_name, s=seed: progress(t, m, s, steps)  # noqa: E731
        rows += run_one(config, images, task, model_name, seed, tests, report)
    return rows


# -- reporting ----------------------------------------------------------------------
def _mean(rows, key, **match):
    values = [r[key] for r in rows if all(r[k] == v for k, v in match.items()) and key in r]
    return float(np.mean(values)) if values else float("nan")


def summary(rows, config):
    """One line per (task, model): accuracy and MAE per test length, mean over seeds."""
    headers = (["task", "model"] + [f"acc L={n}" for n in config.lengths]
               + [f"MAE L={n}" for n in config.lengths])
    body = []
    for task in config.tasks:
        for model in config.models:
            line = [task, model]
            line += [_percent(_mean(rows, "accuracy", task=task, model=model, length=n))
                     for n in config.lengths]
            line += [_mean(rows, "mae", task=task, model=model, length=n) for n in config.lengths]
            body.append(line)
    return headers, body


def count_summary(rows, config):
    """Counting only: the fraction of individual counts right, per length."""
    headers = ["model"] + [f"counts right L={n}" for n in config.lengths]
    body = [[model] + [_percent(_mean(rows, "count_accuracy", task="counting", model=model,
                                      length=n)) for n in config.lengths]
            for model in config.models]
    return headers, body


def state_summary(rows, config):
    """Arithmetic cores: the trained state block's spectral radius and distance from I."""
    headers = ["task", "model", "state radius", "max |S - I|"]
    body = []
    for task in config.tasks:
        for model in config.models:
            group = [r for r in rows if r["task"] == task and r["model"] == model
                     and r.get("state_radius", "") != ""]
            if group:
                body.append([task, model,
                             float(np.mean([r["state_radius"] for r in group])),
                             float(np.mean([r["state_max_dev"] for r in group]))])
    return headers, body


def _percent(value):
    return "nan" if np.isnan(value) else f"{100 * value:.1f} %"


def plot(rows, config, path):
    """Accuracy (top) and MAE (bottom) against test length, one column per task."""
    plt = pyplot()
    tasks = list(config.tasks)
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.6 * len(tasks), 7), squeeze=False)
    lengths = list(config.lengths)
    for column, task in enumerate(tasks):
        for model in config.models:
            acc = [_mean(rows, "accuracy", task=task, model=model, length=n) for n in lengths]
            mae = [_mean(rows, "mae", task=task, model=model, length=n) for n in lengths]
            axes[0][column].plot(lengths, np.multiply(acc, 100), marker="o", label=model)
            axes[1][column].plot(lengths, mae, marker="o", label=model)
        for row, label in ((0, "accuracy (%)"), (1, "mean absolute error")):
            ax = axes[row][column]
            ax.set_xscale("log")
            if row == 1:
                ax.set_yscale("log")
            ax.axvline(config.train_length, color="grey", linestyle="--", linewidth=0.8)
            ax.set_xlabel("test sequence length")
            ax.set_ylabel(label)
            ax.set_title(f"{task}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    return save_figure(fig, path, title=f"MNIST sequences: trained on length {config.train_length}")


def describe(config, rows):
    """One paragraph: data set, budget and seeds of a run."""
    data = {(r["dataset"], r["data_source"], r["image_size"], r["padding"]) for r in rows}
    data_text = "; ".join(f"{name} {size} from {source}, padding {padding}"
                          for name, source, size, padding in sorted(data)) or "no runs"
    return (f"Data: {data_text}. Trained on length {config.train_length} (training images), "
            f"tested on lengths {', '.join(map(str, config.lengths))} ({config.test_sequences} "
            f"sequences each, test images); {config.seeds} seed(s), {config.steps} steps of "
            f"{config.batch_size} sequences, Adam lr {config.learning_rate}.")


def write_report(rows, config, out, prefix="mnist"):
    """Write <prefix>_runs.csv, <prefix>_table.md and <prefix>.png; return (text, paths)."""
    headers, body = summary(rows, config)
    paths = [write_csv(rows, os.path.join(out, f"{prefix}_runs.csv"))]
    md = os.path.join(out, f"{prefix}_table.md")
    counting = "counting" in config.tasks
    with open(md, "w") as handle:
        handle.write(
            "# MNIST sequences (NALU paper Table 2, and parity)\n\n"
            f"{describe(config, rows)}\n\n"
            "Accuracy: rounded prediction exactly right (counting: all ten counts); MAE: mean "
            "absolute error. Mean over seeds.\n\n"
            + markdown_table(headers, body) + "\n"
        )
        if counting:
            c_headers, c_body = count_summary(rows, config)
            handle.write("\nCounting, fraction of the individual counts right:\n\n"
                         + markdown_table(c_headers, c_body) + "\n")
        s_headers, s_body = state_summary(rows, config)
        if s_body:
            handle.write("\nTrained state-to-state block S of the arithmetic cores (mean over "
                         "seeds; radius 1 and S = I carry the state over unchanged):\n\n"
                         + markdown_table(s_headers, s_body) + "\n")
    paths.append(md)
    paths.append(plot(rows, config, os.path.join(out, f"{prefix}.png")))
    text = text_table(headers, body)
    if counting:
        text += "\n\ncounting, individual counts right:\n" + text_table(*count_summary(rows, config))
    return text, paths
