"""The training aids of the iNALU paper (Schlör, Ring and Hotho 2020).

- `inalu_optimizer`: RMSprop with element-wise gradient clipping at 0.1.
- `AlternatingUpdates`: a callback that, inside `model.fit`, trains the path
  weights only for 8 batches, then the gates only for 2, and so on.
- `ReinitializeOnStagnation`: a callback that re-draws the weights of the
  units from U(−2, 2) when the loss stagnates (`is_stagnating`).

The paper's fourth aid, the saturation regularizer applied once the loss is
below 1, is `nalu_keras.regularizers.Saturation` driven by
`nalu_keras.callbacks.LossTriggerSchedule` (see the `iNALU` docstring).

The callbacks work with the compiled train step of every backend. On JAX the
compiled step is a pure function of the model's tracked variables, so the
switch of `AlternatingUpdates` is a non-trainable variable of each iNALU
(`update_phase`), and the callbacks synchronize the training state
(`model.jax_state_sync()`, which Keras' `Callback.model` also triggers on
JAX) before assigning variables, and only when they change something.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from nalu_keras.layers.base import ArithmeticUnit
from nalu_keras.layers.inalu import PHASE_ALL, PHASE_GATE, PHASE_WEIGHTS, iNALU
from nalu_keras.validation import check_number


def inalu_optimizer(learning_rate=1e-2, clipvalue=0.1, **kwargs):
    """The optimizer of the iNALU runs: RMSprop, lr 1e-2, gradients clipped at 0.1.

    Keras' `clipvalue` clips each gradient entry to [−clipvalue, clipvalue]
    (element-wise, as in the paper), unlike `clipnorm`.

    Args:
        learning_rate: default 1e-2.
        clipvalue: default 0.1; None for no clipping.
        **kwargs: other `keras.optimizers.RMSprop` arguments.

    Returns:
        A `keras.optimizers.RMSprop`.

    Example:

    >>> model.compile(optimizer=inalu_optimizer(), loss="mse")
    """
    return keras.optimizers.RMSprop(
        learning_rate=learning_rate, clipvalue=clipvalue, **kwargs
    )


def _sync(model):
    """Bring the variables of `model` up to date during a JAX `fit`.

    Between batches the JAX trainer keeps the state outside the variables;
    after this call they hold it again and the trainer re-reads them (so an
    assignment made now reaches the next compiled step). A no-op elsewhere.
    """
    sync = getattr(model, "jax_state_sync", None)
    if callable(sync):
        sync()


def _check_count(name, value, minimum):
    return check_number(name, value, minimum=minimum, integer=True)


class _UnitCallback(keras.callbacks.Callback):
    """A callback acting on some layers of the model (default: a unit class's)."""

    default_class = ArithmeticUnit

    def __init__(self, layers=None):
        super().__init__()
        self._given_layers = None if layers is None else list(layers)

    def _layers(self):
        layers = (
            self._given_layers
            if self._given_layers is not None
            else self.default_class.instances_in(self.model)
        )
        if not layers:
            raise ValueError(
                f"{type(self).__name__} found no {self.default_class.__name__} "
                "layer in the model; pass `layers=`."
            )
        return layers


class AlternatingUpdates(_UnitCallback):
    """Alternate weight-only and gate-only updates, as in the iNALU paper.

    In every cycle of `weight_steps + gate_steps` training batches, the first
    `weight_steps` update only the path weights (Ŵ, M̂) and the next
    `gate_steps` only the gate ĝ (paper: 8 and 2). The callback sets each
    layer's non-trainable `update_phase` variable before each batch; the
    layer then puts a stop_gradient on the group that must not move. The
    forward pass is unchanged. After training the phase is reset to 0 (all
    weights trained).

    A frozen group gets a zero gradient. With RMSprop (the paper's optimizer,
    no momentum by default) that leaves it exactly unchanged; with a
    momentum optimizer (Adam, SGD with momentum) or weight decay the
    parameters still drift by their momentum or decay.

    The batch counter runs across epochs. The callback is called once per
    compiled execution, so use `steps_per_execution=1` (the default).

    Args:
        weight_steps: batches per cycle that update the weights (default 8).
        gate_steps: batches per cycle that update the gates (default 2).
        layers: None (default: every `iNALU` of the model) or a list of layers
            with an `update_phase` variable.

    Example:

    >>> model.fit(x, y, callbacks=[AlternatingUpdates()])
    """

    default_class = iNALU

    def __init__(self, weight_steps=8, gate_steps=2, layers=None):
        super().__init__(layers)
        self.weight_steps = _check_count("weight_steps", weight_steps, 1)
        self.gate_steps = _check_count("gate_steps", gate_steps, 1)
        self.step = 0
        self._phase = None

    def phase_for(self, step):
        """The `update_phase` of batch number `step` (counted from 0)."""
        if step % (self.weight_steps + self.gate_steps) < self.weight_steps:
            return PHASE_WEIGHTS
        return PHASE_GATE

    def _set_phase(self, phase):
        if phase == self._phase:
            return
        _sync(self.model)
        for layer in self._layers():
            layer.update_phase.assign(float(phase))
        self._phase = phase

    def on_train_begin(self, logs=None):
        self.step = 0
        self._phase = None

    def on_train_batch_begin(self, batch, logs=None):
        self._set_phase(self.phase_for(self.step))
        self.step += 1

    def on_train_end(self, logs=None):
        self._set_phase(PHASE_ALL)


def is_stagnating(losses, threshold=1.0):
    """The iNALU re-initialization criterion on a loss history.

    The history is split into an older and a newer half (the newer one gets
    the extra element of an odd length). The loss stagnates when

        mean(older) <= mean(newer) + std(newer)   and   mean(newer) > threshold

    that is, the newer losses are not clearly lower than the older ones and
    still large.

    Args:
        losses: a sequence of at least 2 losses, oldest first.
        threshold: the loss below which training is never called stagnant
            (default 1.0).

    Returns:
        bool.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size < 2:
        raise ValueError(
            f"`losses` must be a 1-D sequence of at least 2 values; got shape "
            f"{losses.shape}."
        )
    older, newer = losses[: losses.size // 2], losses[losses.size // 2 :]
    newer_mean = float(np.mean(newer))
    return bool(
        np.mean(older) <= newer_mean + float(np.std(newer)) and newer_mean > threshold
    )


class ReinitializeOnStagnation(_UnitCallback):
    """Re-draw the units' weights when the training loss stagnates (iNALU).

    At the end of each epoch the callback records `logs[monitor]`. Every
    `check_every` epochs, once it has `history_length` values, it applies
    `is_stagnating` to the last `history_length`; if the loss stagnates,
    every trainable weight of the units (Ŵ, M̂ and the gates) is re-drawn
    from U(minval, maxval) and the history is cleared. The optimizer's state
    (e.g. RMSprop's running averages) is kept.

    Args:
        history_length: the number of epochs the criterion looks at
            (default 10).
        check_every: epochs between two checks (default: `history_length`).
        threshold: the `is_stagnating` threshold (default 1.0).
        minval, maxval: the re-initialization interval (default −2, 2).
        monitor: the logged loss to watch (default "loss").
        seed: seed of the re-drawn values (None: from NumPy's global state).
        layers: None (default: every `iNALU` of the model) or a list of
            layers.

    Attributes:
        reinitializations: list of the epochs (0-based) after which the
            weights were re-drawn.

    Example:

    >>> model.fit(x, y, epochs=100, callbacks=[ReinitializeOnStagnation()])
    """

    default_class = iNALU

    def __init__(
        self,
        history_length=10,
        check_every=None,
        threshold=1.0,
        minval=-2.0,
        maxval=2.0,
        monitor="loss",
        seed=None,
        layers=None,
    ):
        super().__init__(layers)
        self.history_length = _check_count("history_length", history_length, 2)
        self.check_every = (
            self.history_length
            if check_every is None
            else _check_count("check_every", check_every, 1)
        )
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise ValueError(f"`threshold` must be a number; got {threshold!r}.")
        self.threshold = float(threshold)
        if not (isinstance(minval, numbers.Real) and isinstance(maxval, numbers.Real)) or not (
            minval < maxval
        ):
            raise ValueError(
                f"Expected numbers minval < maxval; got minval={minval!r}, "
                f"maxval={maxval!r}."
            )
        self.minval, self.maxval = float(minval), float(maxval)
        self.monitor = monitor
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.history = []
        self.reinitializations = []

    def on_train_begin(self, logs=None):
        self.history = []

    def reinitialize(self):
        """Re-draw every trainable weight of the units from U(minval, maxval)."""
        _sync(self.model)
        for layer in self._layers():
            for variable in layer.trainable_weights:
                values = self._rng.uniform(self.minval, self.maxval, size=variable.shape)
                variable.assign(values.astype(variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"ReinitializeOnStagnation monitors {self.monitor!r}, which is "
                f"not in the logs ({sorted(logs)})."
            )
        self.history.append(float(logs[self.monitor]))
        if len(self.history) < self.history_length or (epoch + 1) % self.check_every:
            return
        if is_stagnating(self.history[-self.history_length :], self.threshold):
            self.reinitialize()
            self.reinitializations.append(epoch)
            self.history = []
