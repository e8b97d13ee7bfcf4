"""The per-seed reference path: one `model.fit` per seed, on any backend.

For every seed: `keras.utils.set_random_seed(seed)`, `build_model()`, compile
with `keras.optimizers.Adam` and `loss="mse"`, and fit on the seed's training
stream, the very batches `train_vectorized` draws inside its compiled program
(`draw_batches`, generated with JAX on the host, a block of steps at a time,
then fed as numpy arrays). A callback sets the scheduled regularizer
strengths before every step and evaluates the fixed validation and test sets
at every logged step, so the rows are those of `train_vectorized`:

* `train_loss` at step t: the loss of batch t at the weights after t steps
  (fit's loss of the first batch of an epoch: the epochs are the logging
  intervals), and for the last logged step (no update follows)
  `model.evaluate` on batch t;
* `interp_mse`, `extrap_mse`: the MSE of `model(x)` on the fixed sets, read
  at the start of the batch of step t.

It is much slower than the vectorized trainer (see
`reference/PERFORMANCE.md`) and is here as the definition the fast path is
tested against, and as the trainer for the TensorFlow and PyTorch backends.
JAX must be installed (it generates the data stream) whatever the backend.
"""

from __future__ import annotations

import numpy as np

from nalu_keras.lab.training.vectorized import (
    SelectionTracker,
    TrainResult,
    _check_int,
    _prepare_run,
    _values,
    build_seeded,
    draw_batches,
    resolve_strength_keys,
)


def _mse(model, x, t, chunk):
    import keras

    total = 0.0
    for start in range(0, len(x), chunk):
        y = keras.ops.convert_to_numpy(model(x[start : start + chunk], training=False))
        total += float(np.sum(np.square(t[start : start + chunk].astype(np.float64) - y.astype(np.float64))))
    return total / len(x)


def _callback_class():
    import keras

    class _Log(keras.callbacks.Callback):
        """Sets strengths before every step; evaluates at logged steps."""

        def __init__(self, owner):
            super().__init__()
            self.owner = owner

        def on_train_batch_begin(self, batch, logs=None):
            # `self.model` only when needed: on JAX, reading it writes the
            # training state back into the variables (a sync per read).
            self.owner.before_step(lambda: self.model)

        def on_train_batch_end(self, batch, logs=None):
            self.owner.after_step(logs)

    return _Log


class _SeedRun:
    """The bookkeeping of one seed's fit (step counter, strengths, rows)."""

    def __init__(self, seed, model, strengths, log_every, validation, test, eval_chunk):
        self.seed = seed
        self.strengths = strengths
        self.log_every = log_every
        self.validation = validation
        self.test = test
        self.eval_chunk = eval_chunk
        self.step = 0
        self.rows = []
        self.pending = None
        self.assigned = {}
        self.indices = {}
        self.tracker = SelectionTracker(1)
        if strengths is not None:
            self.indices = resolve_strength_keys(model, list(strengths(0)))

    def set_strengths(self, get_model, step):
        """Assign strengths(step), only the values that changed."""
        if self.strengths is None:
            return
        changes = {}
        for key, value in self.strengths(np.int32(step)).items():
            value = float(np.asarray(value, dtype=np.float32))
            if key not in self.indices:
                self.indices[key] = resolve_strength_keys(get_model(), [key])[key]
            for index in self.indices[key]:
                if self.assigned.get(index) != value:
                    changes[index] = value
        if changes:
            variables = get_model().non_trainable_variables
            for index, value in changes.items():
                variables[index].assign(value)
                self.assigned[index] = value

    def evaluate(self, model, step):
        row = {
            "seed": self.seed,
            "step": step,
            "train_loss": None,
            "interp_mse": _mse(model, *self.validation, self.eval_chunk),
            "extrap_mse": _mse(model, *self.test, self.eval_chunk),
        }
        self.tracker.update(step, np.array([row["interp_mse"]]), lambda: (
            [v[None] for v in _values(model.trainable_variables)],
            [v[None] for v in _values(model.non_trainable_variables)],
        ))
        return row

    def before_step(self, get_model):
        self.set_strengths(get_model, self.step)
        if self.step % self.log_every == 0:
            self.pending = self.evaluate(get_model(), self.step)

    def after_step(self, logs):
        if self.pending is not None:
            # the first batch of an epoch: the running mean is this batch's loss
            self.pending["train_loss"] = float(logs["loss"])
            self.rows.append(self.pending)
            self.pending = None
        self.step += 1


def _stream(task, value_range, seed, start, stop, batch_size, rng, block, subsets):
    for first in range(start, stop, block):
        count = min(block, stop - first)
        x, t = draw_batches(task, value_range, seed, first, count, batch_size, rng, subsets)
        for i in range(count):
            yield x[i], t[i]


def train_single(
    build_model,
    task,
    seeds,
    steps,
    *,
    interpolation_range="U[1,2]",
    extrapolation_range="U[2,6]",
    batch_size=128,
    learning_rate=1e-3,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    log_every=1000,
    strengths=None,
    validation_size=10_000,
    test_size=10_000,
    validation_seed=None,
    test_seed=None,
    rng="hash",
    eval_chunk=2000,
    block=100,
    jit_compile="auto",
    subsets="shared",
):
    """Train `build_model()` on `task` with `model.fit`, one seed after another.

    The arguments mean what they mean for `train_vectorized` (same defaults,
    same rows, same final values up to float32 rounding), plus:

    Args:
        block: training steps whose batches are generated at a time.
        jit_compile: passed to `model.compile` (never False on JAX: about
            100× slower).

    Every step is its own execution (`steps_per_execution=1`), so the
    strengths are set before each step as in the vectorized trainer.

    Returns:
        A `TrainResult`.
    """
    task, seeds, steps, log_every, eval_chunk, adam, validation, test, logged = _prepare_run(
        task, seeds, steps, log_every, eval_chunk, learning_rate, beta_1, beta_2, epsilon,
        interpolation_range, extrapolation_range, validation_size, test_size,
        validation_seed, test_seed, subsets=subsets,
    )
    block = _check_int("block", block, 1)
    callback_class = _callback_class()

    rows, trainable, non_trainable, paths = [], [], [], None
    selected, selected_nt, selected_steps = [], [], []
    for position, seed in enumerate(seeds):
        model = build_seeded(build_model, seed)
        if paths is None:
            paths = [v.path for v in model.trainable_variables]
        model.compile(
            optimizer=adam.keras_optimizer(),
            loss="mse",
            steps_per_execution=1,
            jit_compile=jit_compile,
        )
        own_sets = [data if subsets == "shared" else (data[0], data[1][position]) for data in (validation, test)]
        run = _SeedRun(seed, model, strengths, log_every, *own_sets, eval_chunk)
        callback = callback_class(run)
        # one epoch per logging interval: a full interval of log_every steps,
        # then the remainder (if steps is not a multiple of log_every)
        full, rest = divmod(steps, log_every)
        done = 0
        for epochs, length in ((full, log_every), (1 if rest else 0, rest)):
            if epochs == 0:
                continue
            stop = done + epochs * length
            data = _stream(task, interpolation_range, seed, done, stop, batch_size, rng, block, subsets)
            model.fit(
                data,
                steps_per_epoch=length,
                epochs=epochs,
                verbose=0,
                callbacks=[callback],
                shuffle=False,
            )
            done = stop
        assert run.step == steps, (run.step, steps)
        # the last logged step: no update follows, evaluate its batch
        run.set_strengths(lambda model=model: model, steps)
        row = run.evaluate(model, steps)
        x, t = draw_batches(task, interpolation_range, seed, steps, 1, batch_size, rng, subsets)
        row["train_loss"] = float(model.evaluate(x[0], t[0], batch_size=batch_size, verbose=0))
        run.rows.append(row)
        assert [r["step"] for r in run.rows] == logged
        rows.extend(run.rows)
        trainable.append(_values(model.trainable_variables))
        non_trainable.append(_values(model.non_trainable_variables))
        selected.append([v[0] for v in run.tracker.trainable])
        selected_nt.append([v[0] for v in run.tracker.non_trainable])
        selected_steps.extend(run.tracker.steps)

    stack = lambda parts: [np.stack(column) for column in zip(*parts)] if parts and parts[0] else []  # noqa: E731
    return TrainResult(
        rows=rows,
        seeds=seeds,
        trainable=stack(trainable),
        non_trainable=stack(non_trainable),
        trainable_paths=paths,
        selected_trainable=stack(selected),
        selected_non_trainable=stack(selected_nt),
        selected_steps=tuple(selected_steps),
    )
