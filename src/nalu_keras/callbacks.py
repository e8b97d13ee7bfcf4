"""Keras callbacks that schedule the strength of a regularizer during `fit`.

Each schedule drives the strength variable of one or more regularizers of
`nalu_keras.regularizers` (or bare scalar `keras.Variable`s) as a function of
the optimizer step t, the number of optimizer steps taken before the current
batch (counted from `model.optimizer.iterations` when `fit` starts, so a
second `fit` continues the schedule):

| class                  | strength at step t                                 | paper   |
| ---------------------- | -------------------------------------------------- | ------- |
| `LinearWarmupSchedule` | λ̂ · clip((t − t_start) / (t_end − t_start), 0, 1)  | NAU/NMU |
| `StepMultiplySchedule` | min(β_start · factor^⌊t / every⌋, β_end)            | NPU     |
| `LossTriggerSchedule`  | λ once t >= warm-up and the loss is below a level  | iNALU   |

How the new value reaches a compiled train step: the value is assigned to
the strength variable before the batch, and the variable is part of the
model's state (the layers track it, see `nalu_keras.regularizers`), so the
next call of the compiled step reads it. On the JAX backend Keras keeps the
model state outside the variables during an epoch; the schedule makes Keras
write it back (`jax_state_sync`, via `self.model`) before assigning, and
only when the value changes. A schedule refuses, at the start of `fit`, a
strength variable that is not tracked by the model (on JAX its value would
be frozen into the compiled step).

With `steps_per_execution > 1`, Keras calls the batch hooks once per group
of steps; the strength is then set once per group, from its first step.
"""

from __future__ import annotations

import math

import keras

from nalu_keras.validation import check_number


def _strength_variable(target):
    if isinstance(target, keras.Variable):
        variable = target
    else:
        variable = getattr(target, "strength_variable", None)
    if variable is None or tuple(variable.shape) != ():
        raise ValueError(
            "A schedule target must be a nalu_keras regularizer (with a "
            "`strength_variable`) or a scalar keras.Variable; got "
            f"{target!r}."
        )
    return variable


class StrengthSchedule(keras.callbacks.Callback):
    """Base class: sets the strength of `targets` before every batch.

    Subclasses implement `strength_at(step)`; the value is assigned only when
    it changes.

    Args:
        targets: a regularizer of `nalu_keras.regularizers`, a scalar
            `keras.Variable`, or a list of them; all get the same value.

    Attributes:
        step: the number of optimizer steps taken so far (during `fit`).
        value: the strength last assigned (None before the first batch).
    """

    def __init__(self, targets):
        super().__init__()
        if not isinstance(targets, (list, tuple)):
            targets = [targets]
        if not targets:
            raise ValueError("`targets` must name at least one regularizer.")
        self.targets = list(targets)
        self.variables = [_strength_variable(t) for t in self.targets]
        self.step = 0
        self.value = None
        self._batch_begin = 0

    def strength_at(self, step):
        """The strength for the optimizer step `step` (0-based)."""
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        model = self.model
        tracked = {id(v) for v in model.variables}
        for target, variable in zip(self.targets, self.variables):
            if id(variable) not in tracked:
                raise ValueError(
                    f"The strength variable of {target!r} is not tracked by "
                    "the model, so a compiled train step would not see it "
                    "change (on JAX it would be a constant). Attach the "
                    "regularizer to a nalu_keras unit, or call "
                    "nalu_keras.regularizers.track_strengths(layer, [...]) in "
                    "the build of the layer that uses it."
                )
        optimizer = getattr(model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        self.step = 0
        if iterations is not None:
            self.step = int(keras.ops.convert_to_numpy(iterations.value))
        self.value = None

    def set_value(self, value):
        """Assign `value` to every target (syncing the JAX state first)."""
        value = float(value)
        if value == self.value:
            return
        self.model  # noqa: B018  (on JAX, writes the training state back)
        for variable in self.variables:
            variable.assign(value)
        self.value = value

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_begin = batch
        self.set_value(self.strength_at(self.step))

    def on_train_batch_end(self, batch, logs=None):
        self.step += batch - self._batch_begin + 1


class LinearWarmupSchedule(StrengthSchedule):
    """Madsen & Johansen's linear warm-up of a regularizer (NAU/NMU paper):

        λ(t) = λ̂ · clip((t − t_start) / (t_end − t_start), 0, 1)

    evaluated at every optimizer step t: 0 until `start_step`, then a linear
    ramp reaching `strength` (λ̂) at `end_step`, constant afterwards. Their
    values: λ̂ = 10 from 1e6 to 2e6 (NMU models), λ̂ = 0.01 from 5e3 to 5e4
    (NAU models); the later benchmark compressed the NMU schedule to
    2e4 -> 3.5e4.

    Args:
        targets: regularizer(s) or scalar variable(s) to drive.
        strength: finite float >= 0, λ̂.
        start_step: int >= 0, t_start.
        end_step: int > `start_step`, t_end.

    Example:

    >>> reg = Sparsity(0.0)
    >>> model = keras.Sequential([NAU(2, w_regularizer=reg), NMU(1)])
    >>> schedule = LinearWarmupSchedule(reg, 0.01, 5_000, 50_000)
    >>> model.fit(x, y, callbacks=[schedule])
    """

    def __init__(self, targets, strength, start_step, end_step):
        super().__init__(targets)
        self.strength = check_number("strength", strength, minimum=0)
        self.start_step = check_number("start_step", start_step, 0, integer=True)
        self.end_step = check_number("end_step", end_step, 0, integer=True)
        if self.end_step <= self.start_step:
            raise ValueError(
                f"`end_step` must be greater than `start_step`; got "
                f"start_step={start_step!r}, end_step={end_step!r}."
            )

    def strength_at(self, step):
        fraction = (step - self.start_step) / (self.end_step - self.start_step)
        return self.strength * min(max(fraction, 0.0), 1.0)


class StepMultiplySchedule(StrengthSchedule):
    """The NPU paper's regularization schedule (Heim et al. 2020):

        β(t) = min(β_start · factor^⌊t / every⌋, β_end)

    β starts at `start`, is multiplied by `factor` (10) every `every`
    (10⁴) optimizer steps, and stays at `end` once it gets there.

    Args:
        targets: regularizer(s) or scalar variable(s) to drive (typically
            `L1`).
        start: finite float > 0, β_start.
        end: finite float >= `start`, β_end.
        every: int > 0, the number of steps between two multiplications
            (default 10000).
        factor: finite float > 1 (default 10.0).

    Example:

    >>> reg = L1(1e-7)
    >>> schedule = StepMultiplySchedule(reg, start=1e-7, end=1e-4, every=10_000)
    """

    def __init__(self, targets, start, end, every=10_000, factor=10.0):
        super().__init__(targets)
        self.start = check_number("start", start, minimum=0, strict=True)
        self.end = check_number("end", end, minimum=0, strict=True)
        if self.end < self.start:
            raise ValueError(
                f"`end` must be >= `start`; got start={start!r}, end={end!r}."
            )
        self.every = check_number("every", every, 0, strict=True, integer=True)
        self.factor = check_number("factor", factor, 1, strict=True)

    def strength_at(self, step):
        exponent = step // self.every
        # Stop multiplying once past `end` (and before a float overflow).
        limit = math.log(self.end / self.start) / math.log(self.factor)
        if exponent >= limit:
            return self.end
        return min(self.start * self.factor**exponent, self.end)


class LossTriggerSchedule(StrengthSchedule):
    """iNALU's switch (Schlör et al. 2020): the regularizer is on (at
    `strength`) only after a warm-up, and only while the loss is below a
    level; otherwise its strength is 0.

    After each batch, with t the number of optimizer steps taken, the
    strength for the next step is `strength` if t >= `warmup_steps` and
    `logs[monitor] < threshold`, else 0. With `latch=True` it stays on once
    switched on. The paper uses strength 0.05 (`Saturation`), threshold 1.

    Notes: Keras reports in the batch logs the mean of the loss over the
    current epoch so far, not the last batch's, and that loss includes the
    regularization penalties themselves.

    Args:
        targets: regularizer(s) or scalar variable(s) to drive (typically
            `Saturation`).
        strength: finite float >= 0, the value when on (default 0.05).
        threshold: finite float, the loss level (default 1.0).
        warmup_steps: int >= 0, the steps before the switch may turn on
            (default 0).
        monitor: the key of the batch logs to compare (default `"loss"`).
        latch: bool, default False: the condition is checked after every
            batch, so the penalty turns off again if the loss rises above
            the level; with True it stays on once switched on.

    Example:

    >>> reg = Saturation(0.0)
    >>> schedule = LossTriggerSchedule(reg, 0.05, threshold=1.0, warmup_steps=1000)
    """

    def __init__(
        self,
        targets,
        strength=0.05,
        threshold=1.0,
        warmup_steps=0,
        monitor="loss",
        latch=False,
    ):
        super().__init__(targets)
        self.strength = check_number("strength", strength, minimum=0)
        self.threshold = check_number("threshold", threshold)
        self.warmup_steps = check_number("warmup_steps", warmup_steps, 0, integer=True)
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"Received an invalid value for argument `monitor`, expected "
                f"a key of the logs, got {monitor!r}."
            )
        self.monitor = monitor
        if not isinstance(latch, bool):
            raise ValueError(
                f"Received an invalid value for argument `latch`, expected "
                f"True or False, got {latch!r}."
            )
        self.latch = latch
        self.active = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.latch:
            self.active = False

    def strength_at(self, step):
        return self.strength if self.active else 0.0

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.latch and self.active:
            return
        if logs is None or self.monitor not in logs:
            raise ValueError(
                f"LossTriggerSchedule monitors {self.monitor!r}, which is not "
                f"in the batch logs (keys: {sorted(logs or {})})."
            )
        loss = float(keras.ops.convert_to_numpy(logs[self.monitor]))
        self.active = self.step >= self.warmup_steps and loss < self.threshold
