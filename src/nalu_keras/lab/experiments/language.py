"""Table 3 of the NALU paper: translating English number words into numbers.

Task: a sentence of number words ("seven hundred twenty three") -> its value
(723), for the numbers 0..999 (`nalu_keras.lab.data.number_words`). The paper's
split: 169 training sentences (0..19 and a random sample that uses every
token), 200 for validation, 631 for testing, so most test numbers are
combinations of words never seen together in training.

Models (the authors' later description; the paper gives no sizes):

    token ids -> Embedding(31, 256) -> LSTM(10) -> head, at every step

(31 embedding rows: padding, the 29 tokens and "thousand", which only the
"beyond" set uses; 32 with `use_and`.)

- "NALU": the head is `NALU(1)` on the LSTM output.
- "LSTM": the baseline; the head is `Dense(1)`.

The head is applied to the LSTM output after every word (the LSTM returns
its whole sequence), so the model has a prediction after each token. What is
trained is set by `targets`:

- "final" (default): the squared error of the prediction after the last
  word only (the model reads the sentence, then answers).
- "per_step": the squared error after every word against the running value
  of the words so far ("seven" 7, "seven hundred" 700, "seven hundred
  twenty" 720, ...), all steps weighted equally.

Sentences are padded in front (id 0) and the padding is masked, so the
LSTM starts from its zero state at the first word whatever the length.

Training: Adam (learning rate 3e-3, gradient norm clipped to 1), batches
of 32 drawn by reshuffling the 169 training sentences, `steps` steps. Every
`eval_every` steps the validation MAE is measured; the weights with the
lowest validation MAE are the ones evaluated (model selection on the
validation split, which is what it is for). None of this is stated in the
paper; it is the configuration's default.

Metric: mean absolute error of the prediction after the last word, on the
training, validation and test splits, per seed and as the median over
seeds. "beyond" is a further set of `beyond_size` numbers from 1,000..9,999:
their sentences contain "thousand", a word no training sentence has (its
embedding row stays at its random initialization), so no model is expected
to get them right; they show what happens out of vocabulary.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np

from nalu_keras.lab.data import number_words as nw
from nalu_keras.lab.reporting import markdown_table, pyplot, save_figure, text_table, write_csv
from nalu_keras.layers import NALU
from nalu_keras.validation import check_learning_rate, check_steps

MODELS = ("LSTM", "NALU")
TARGETS = ("final", "per_step")
SPLITS = ("train", "validation", "test")
BEYOND_RANGE = (1000, 9999)
EXAMPLE_NUMBERS = (3, 45, 100, 723, 835, 999)
BEYOND_EXAMPLES = (1205, 4000, 9999)


@dataclasses.dataclass(frozen=True)
class LanguageConfig:
    """One Table 3 run: every model trained with every seed.

    Fields:
        models: subset of MODELS.
        seeds: models per kind, trained with seeds 0..seeds-1 (weights and
            batch order).
        steps: optimizer steps per model.
        batch_size, learning_rate, clipnorm: Adam's settings (clipnorm None
            or a positive gradient-norm limit).
        embedding: embedding size; hidden: LSTM units.
        targets: "final" or "per_step" (see the module docstring).
        use_and: write sentences with "and" (vocabulary 30 + "thousand").
        split_seed: the seed of the 169/200/631 split (one split for all).
        eval_every: steps between validation measurements (model selection).
        beyond_size: numbers in the "beyond" set (0 to skip it).
        example_numbers: numbers whose predictions (after each word) are
            reported; those in the training split are flagged as such.
    """

    models: tuple = MODELS
    seeds: int = 5
    steps: int = 30_000
    batch_size: int = 32
    learning_rate: float = 3e-3
    clipnorm: float | None = 1.0
    embedding: int = 256
    hidden: int = 10
    targets: str = "final"
    use_and: bool = False
    split_seed: int = 0
    eval_every: int = 1000
    beyond_size: int = 200
    example_numbers: tuple = EXAMPLE_NUMBERS + BEYOND_EXAMPLES

    def __post_init__(self):
        if not self.models:
            raise ValueError("models is empty; expected some of " + ", ".join(MODELS))
        for model in self.models:
            if str(model).upper() not in MODELS:
                raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
        object.__setattr__(self, "models", tuple(str(m).upper() for m in self.models))
        object.__setattr__(self, "example_numbers", tuple(self.example_numbers))
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models has duplicates: {self.models!r}")
        for name in ("seeds", "steps", "batch_size", "embedding", "hidden", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.beyond_size, bool) or not isinstance(self.beyond_size, int) \
                or self.beyond_size < 0:
            raise ValueError(f"beyond_size must be a non-negative integer, got {self.beyond_size!r}")
        check_steps("steps", self.steps)
        check_learning_rate("learning_rate", self.learning_rate)
        if self.clipnorm is not None:
            check_learning_rate("clipnorm", self.clipnorm)
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        if not isinstance(self.use_and, bool):
            raise ValueError(f"use_and must be True or False, got {self.use_and!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) \
                or self.split_seed < 0:
            raise ValueError(f"split_seed must be a non-negative integer, got {self.split_seed!r}")
        for n in self.example_numbers:
            nw.number_to_words(n, thousands=True)  # raises ValueError if invalid

    @property
    def vocabulary(self):
        """The 29 tokens of 0..999 (30 with "and") plus "thousand"."""
        return nw.Vocabulary(use_and=self.use_and, thousands=True)

    @property
    def length(self):
        """Sentence length every input is padded to (the longest sentence
        below 10,000, so the "beyond" set fits)."""
        return self.vocabulary.max_length([7777])


# -- data -----------------------------------------------------------------------
def splits(config):
    """{"train", "validation", "test", and "beyond" unless beyond_size == 0}: numbers."""
    train, validation, test = nw.split_numbers(config.split_seed, use_and=config.use_and)
    sets = {"train": train, "validation": validation, "test": test}
    if config.beyond_size:
        rng = np.random.default_rng([config.split_seed, 1000])
        low, high = BEYOND_RANGE
        sets["beyond"] = np.sort(rng.choice(np.arange(low, high + 1), config.beyond_size,
                                            replace=False))
    return sets


def encode(config, values):
    """(ids (n, length) int32, targets (n, length) float32, weights (n, length)).

    The weights select what is trained: the last word only ("final") or
    every word ("per_step"); padding always has weight 0.
    """
    vocab = config.vocabulary
    ids = vocab.encode_numbers(values, config.length)
    targets, weights = vocab.prefix_targets(values, config.length)
    if config.targets == "final":
        weights = np.zeros_like(weights)
        weights[:, -1] = 1.0
    return ids, targets.astype(np.float32), weights.astype(np.float32)


# -- model ----------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="nalu_keras")
class DropMask(keras.layers.Layer):
    """Passes its input through and removes the Keras mask, so that layers
    after it that do not support masking (the arithmetic units) get none."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        # A new tensor: the mask travels with the input tensor object.
        return keras.ops.copy(inputs)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return input_shape


def build_model(config, model_name):
    """ids (batch, length) -> the prediction after every word, (batch, length, 1)."""
    inputs = keras.Input((config.length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(config.vocabulary.input_dim, config.embedding, mask_zero=True,
                               name="embedding")(inputs)
    x = keras.layers.LSTM(config.hidden, return_sequences=True, name="lstm")(x)
    # The heads act on each step separately and need no mask.
    x = DropMask(name="drop_mask")(x)
    if model_name == "NALU":
        outputs = NALU(1, name="nalu")(x)
    else:
        outputs = keras.layers.Dense(1, name="dense")(x)
    return keras.Model(inputs, outputs, name=f"language_{model_name.lower()}")


PREDICT_BATCH = 256


def predict_steps(model, ids):
    """Predictions after every word, float64 (n, length).

    The rows are padded to a multiple of `PREDICT_BATCH` so that every batch
    has one shape and the prediction function is compiled once.
    """
    ids = np.asarray(ids)
    n = len(ids)
    padded = np.zeros((-(-n // PREDICT_BATCH) * PREDICT_BATCH,) + ids.shape[1:], ids.dtype)
    padded[:n] = ids
    out = model.predict(padded, batch_size=PREDICT_BATCH, verbose=0)
    return np.asarray(out, np.float64)[:n, :, 0]


def final_mae(model, ids, values):
    """Mean absolute error of the prediction after the last word (inf if not finite)."""
    prediction = predict_steps(model, ids)[:, -1]
    with np.errstate(over="ignore", invalid="ignore"):
        error = float(np.mean(np.abs(prediction - np.asarray(values, np.float64))))
    return error if np.isfinite(error) else float("inf")


def train_one(config, model_name, seed, sets=None, progress=None):
    """Train one model; return (model at the best validation MAE, curve rows, info).

    `progress(steps)`, if given, is called after every `eval_every` steps.
    """
    sets = sets if sets is not None else splits(config)
    keras.utils.set_random_seed(seed)
    model = build_model(config, model_name)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss="mse",
        steps_per_execution=min(100, config.eval_every),
    )
    x, t, w = encode(config, sets["train"])
    x_val = config.vocabulary.encode_numbers(sets["validation"], config.length)
    rng = np.random.default_rng([seed, 17])
    n = len(x)
    best = (float("inf"), 0, model.get_weights())
    curve = []
    done = 0
    start = time.perf_counter()
    while done < config.steps:
        chunk = min(config.eval_every, config.steps - done)
        # `chunk` batches from back-to-back reshuffles of the training set.
        need = chunk * config.batch_size
        order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]
        history = model.fit(x[order], t[order, :, None], sample_weight=w[order],
                            batch_size=config.batch_size, epochs=1, shuffle=False, verbose=0)
        done += chunk
        loss = float(history.history["loss"][-1])
        val = final_mae(model, x_val, sets["validation"])
        curve.append({"model": model_name, "seed": seed, "step": done, "train_loss": loss,
                      "validation_mae": val})
        if val < best[0]:
            best = (val, done, model.get_weights())
        if progress is not None:
            progress(chunk)
        if not np.isfinite(loss):
            break  # diverged; the best weights so far are kept
    model.set_weights(best[2])
    info = {"best_step": best[1], "train_seconds": time.perf_counter() - start,
            "diverged": not np.isfinite(curve[-1]["train_loss"])}
    return model, curve, info


def run(config, progress=None):
    """Train every (model, seed); returns (rows, examples, curves).

    rows: one per (model, seed) with the MAE on each split; examples: one per
    (model, seed, example number) with the prediction after each word;
    curves: every `eval_every` steps, the validation MAE and `train_loss`,
    Keras' training loss averaged over those steps' batches (the weighted
    squared error summed over a batch's word positions, divided by
    batch size × sentence length). `progress(model, seed,
    steps)` is called as training advances (`steps` just finished).
    """
    sets = splits(config)
    vocab = config.vocabulary
    encoded = {name: vocab.encode_numbers(values, config.length) for name, values in sets.items()}
    examples_ids = vocab.encode_numbers(config.example_numbers, config.length)
    train_set = set(sets["train"].tolist())
    rows, examples, curves = [], [], []
    for model_name in config.models:
        for seed in range(config.seeds):
            report = None
            if progress is not None:
                report = lambda steps, m=model_name, s=seed: progress(m, s, steps)  # noqa: E731
            model, curve, info = train_one(config, model_name, seed, sets, report)
            curves += curve
            row = {
                "model": model_name, "seed": seed, "targets": config.targets,
                "steps": config.steps, "best_step": info["best_step"],
                "diverged": info["diverged"],
                "batch_size": config.batch_size, "learning_rate": config.learning_rate,
                "clipnorm": config.clipnorm if config.clipnorm is not None else "",
                "embedding": config.embedding, "hidden": config.hidden,
                "use_and": config.use_and, "vocabulary": vocab.size,
                "split_seed": config.split_seed, "backend": keras.backend.backend(),
                "train_seconds": round(info["train_seconds"], 2),
            }
            for name, values in sets.items():
                row[f"{name}_mae"] = final_mae(model, encoded[name], values)
            rows.append(row)
            steps_out = predict_steps(model, examples_ids)
            for number, ids, out in zip(config.example_numbers, examples_ids, steps_out):
                words = vocab.decode(ids).split()
                trace = out[len(out) - len(words):]
                if number > nw.MAX_BASIC:
                    where = "beyond"
                else:
                    where = "train" if number in train_set else (
                        "validation" if number in set(sets["validation"].tolist()) else "test")
                examples.append({
                    "model": model_name, "seed": seed, "number": number, "split": where,
                    "words": " ".join(words), "prediction": float(trace[-1]),
                    "after_each_word": " ".join(f"{v:.1f}" for v in trace),
                })
    return rows, examples, curves


# -- reporting ------------------------------------------------------------------
def split_names(rows):
    names = list(SPLITS)
    if rows and "beyond_mae" in rows[0]:
        names.append("beyond")
    return names


def median_mae(rows, model, split):
    values = np.asarray([r[f"{split}_mae"] for r in rows if r["model"] == model], np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else float("nan")


def summary(rows, config):
    """(headers, body): per model, the median MAE over seeds of each split,
    and the range (min–max) over seeds of the test MAE."""
    names = split_names(rows)
    headers = ["model"] + [f"{name} MAE" for name in names] + ["test MAE min–max", "seeds"]
    body = []
    for model in config.models:
        group = [r for r in rows if r["model"] == model]
        test = [r["test_mae"] for r in group]
        body.append([model] + [median_mae(rows, model, name) for name in names]
                    + [f"{min(test):.3g}–{max(test):.3g}", str(len(group))])
    return headers, body


def per_seed_table(rows):
    names = split_names(rows)
    headers = ["model", "seed", "best step"] + [f"{n} MAE" for n in names]
    body = [[r["model"], str(r["seed"]), str(r["best_step"])] + [r[f"{n}_mae"] for n in names]
            for r in rows]
    return headers, body


def example_table(examples, config):
    """Predictions of the median-test-MAE seed of each model."""
    headers = ["model", "seed", "number", "split", "words", "prediction", "after each word"]
    return headers, [[e["model"], str(e["seed"]), str(e["number"]), e["split"], e["words"],
                      e["prediction"], e["after_each_word"]] for e in examples]


def representative_seed(rows, model):
    """The seed whose test MAE is the (lower) median of the model's seeds."""
    group = sorted((r for r in rows if r["model"] == model), key=lambda r: r["test_mae"])
    return group[(len(group) - 1) // 2]["seed"]


def describe(config):
    return (
        f"Embedding({config.vocabulary.input_dim}, {config.embedding}) → LSTM({config.hidden}) → "
        f"head; targets: {config.targets}; {config.seeds} seeds, {config.steps} steps, Adam lr "
        f"{config.learning_rate}, clipnorm {config.clipnorm}, batch {config.batch_size}; weights "
        f"with the lowest validation MAE (checked every {config.eval_every} steps); split seed "
        f"{config.split_seed}, sentences {'with' if config.use_and else 'without'} \"and\"."
    )


def plot(rows, curves, config, path):
    plt = pyplot()
    names = split_names(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(config.models)
    for k, model in enumerate(config.models):
        xs = np.arange(len(names)) + (k - (len(config.models) - 1) / 2) * width
        medians = [median_mae(rows, model, n) for n in names]
        left.bar(xs, medians, width, label=f"{model} (median)", alpha=0.7)
        for x, name in zip(xs, names):
            seeds = [r[f"{name}_mae"] for r in rows if r["model"] == model]
            left.scatter([x] * len(seeds), seeds, color="black", s=8, zorder=3)
        steps = sorted({c["step"] for c in curves if c["model"] == model})
        med = [np.median([c["validation_mae"] for c in curves
                          if c["model"] == model and c["step"] == s]) for s in steps]
        right.plot(steps, med, label=model)
    left.set_xticks(np.arange(len(names)))
    left.set_xticklabels(names)
    left.set_yscale("log")
    left.set_ylabel("MAE (dots: seeds)")
    left.set_title("MAE of the prediction after the last word")
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("validation MAE, median over seeds")
    right.set_title("Validation MAE during training")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    return save_figure(fig, path, title="Table 3: number words → number")


def write_report(rows, examples, curves, config, out):
    """Write language_runs.csv, language_examples.csv, language_curves.csv,
    language_table.md and language_mae.png; return (text table, paths)."""
    paths = [
        write_csv(rows, os.path.join(out, "language_runs.csv")),
        write_csv(examples, os.path.join(out, "language_examples.csv")),
        write_csv(curves, os.path.join(out, "language_curves.csv")),
    ]
    headers, body = summary(rows, config)
    seed_headers, seed_body = per_seed_table(rows)
    chosen = []
    for model in config.models:
        seed = representative_seed(rows, model)
        chosen += [e for e in examples if e["model"] == model and e["seed"] == seed]
    ex_headers, ex_body = example_table(chosen, config)
    md = os.path.join(out, "language_table.md")
    with open(md, "w") as handle:
        handle.write(
            "# Table 3: language to number\n\n" + describe(config) + "\n\n"
            "Mean absolute error of the prediction after the last word; median over seeds. "
            "\"beyond\": numbers 1,000..9,999, whose word \"thousand\" never occurs in "
            "training.\n\n" + markdown_table(headers, body)
            + "\n\nPer seed:\n\n" + markdown_table(seed_headers, seed_body)
            + "\n\nExample predictions (the seed with the median test MAE of each model):\n\n"
            + markdown_table(ex_headers, ex_body) + "\n"
        )
    paths.append(md)
    paths.append(plot(rows, curves, config, os.path.join(out, "language_mae.png")))
    return text_table(headers, body), paths
