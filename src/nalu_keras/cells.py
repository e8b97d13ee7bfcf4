"""Recurrent cells built from arithmetic units, for `keras.layers.RNN`."""

from __future__ import annotations

import math
import numbers

import keras

from nalu_keras.layers.base import ArithmeticUnit
from nalu_keras.layers.nac import NAC
from nalu_keras.layers.nalu import NALU

_LAYER_KEYS = ("name", "trainable", "dtype")


@keras.saving.register_keras_serializable(package="nalu_keras")
class ArithmeticCell(keras.layers.Layer):
    """Turns any arithmetic unit into a recurrent cell.

    At each step the unit is applied to the current input concatenated with
    the previous state:

        h_t = unit(concat(x_t, h_{t-1}))

    and h_t is both the output and the next state. With an additive unit and
    exact weights this accumulates a running sum; with a multiplicative one, a
    running product.

    Args:
        unit: an arithmetic unit layer (e.g. `NAC(1)`, `NALU(1)`), not yet
            built; its `units` is the state size.
        initial_state_value: float or None. The value of h_0. None (default)
            takes the unit's neutral element: 0 for additive units (NAC,
            NALU, NAU, ...) and 1 for multiplicative ones (MulNAC, NMU, ...),
            so that the first step does not add or multiply in a spurious
            term.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape (of the wrapping `keras.layers.RNN`):
        3-D tensor `(batch_size, timesteps, input_dim)`.

    Output shape:
        `(batch_size, units)`, or `(batch_size, timesteps, units)` with
        `return_sequences=True`.

    Example:

    >>> rnn = keras.layers.RNN(ArithmeticCell(NAC(1)))
    >>> y = rnn(np.ones((4, 10, 3)))   # (4, 1)
    """

    def __init__(self, unit, initial_state_value=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(unit, ArithmeticUnit):
            raise ValueError(
                "`unit` must be an arithmetic unit layer such as NAC(1) or "
                f"NALU(1); got {unit!r}."
            )
        if initial_state_value is not None and (
            isinstance(initial_state_value, bool)
            or not isinstance(initial_state_value, numbers.Real)
            or not math.isfinite(initial_state_value)
        ):
            raise ValueError(
                "`initial_state_value` must be a finite number or None; got "
                f"{initial_state_value!r}."
            )
        self.unit = unit
        if not self.trainable:
            # A frozen cell freezes the unit it wraps.
            self.unit.trainable = False
        self.initial_state_value = (
            None if initial_state_value is None else float(initial_state_value)
        )

    @property
    def state_size(self):
        return self.unit.units

    @property
    def output_size(self):
        return self.unit.units

    @property
    def h0(self):
        """The initial state value in use."""
        if self.initial_state_value is None:
            return float(self.unit.initial_state_value)
        return self.initial_state_value

    def build(self, input_shape):
        if not self.unit.built:
            self.unit.build(
                tuple(input_shape[:-1]) + (input_shape[-1] + self.state_size,)
            )

    def get_initial_state(self, batch_size=None):
        return [
            keras.ops.full((batch_size, self.state_size), self.h0, dtype=self.compute_dtype)
        ]

    def call(self, inputs, states, training=None):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        h = self.unit(keras.ops.concatenate([inputs, previous], axis=-1))
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config["unit"] = keras.saving.serialize_keras_object(self.unit)
        config["initial_state_value"] = self.initial_state_value
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["unit"] = keras.saving.deserialize_keras_object(config["unit"])
        return cls(**config)


class _NamedUnitCell(ArithmeticCell):
    """A cell whose unit class is fixed: takes the unit's own arguments."""

    unit_class = None

    def __init__(self, units, initial_state_value=None, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_KEYS if k in kwargs}
        unit_kwargs = dict(kwargs)
        if "dtype" in layer_kwargs:
            unit_kwargs["dtype"] = layer_kwargs["dtype"]
        super().__init__(
            self.unit_class(units, **unit_kwargs),
            initial_state_value=initial_state_value,
            **layer_kwargs,
        )

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        unit_config = self.unit.get_config()
        for key in _LAYER_KEYS:
            unit_config.pop(key, None)
        config.update(unit_config)
        config["initial_state_value"] = self.initial_state_value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="nalu_keras")
class NACCell(_NamedUnitCell):
    """A recurrent cell made of an additive NAC: h_t = NAC(concat(x_t, h_{t-1})).

    Args:
        units: positive int, the state size.
        initial_state_value: h_0, default 0.
        **kwargs: the arguments of `NAC` (initializers, ...) and of
            `keras.layers.Layer`.

    Input shape (of the wrapping RNN): `(batch_size, timesteps, input_dim)`.

    Output shape: `(batch_size, units)` (or per step with
    `return_sequences=True`).

    Example:

    >>> rnn = keras.layers.RNN(NACCell(1))
    """

    unit_class = NAC


@keras.saving.register_keras_serializable(package="nalu_keras")
class NALUCell(_NamedUnitCell):
    """A recurrent cell made of a NALU: h_t = NALU(concat(x_t, h_{t-1})).

    Args:
        units: positive int, the state size.
        initial_state_value: h_0, default 0 (the additive path's neutral
            element; pass 1.0 for a cell meant to accumulate products).
        **kwargs: the arguments of `NALU` (gate, epsilon, ...) and of
            `keras.layers.Layer`.

    Input shape (of the wrapping RNN): `(batch_size, timesteps, input_dim)`.

    Output shape: `(batch_size, units)` (or per step with
    `return_sequences=True`).

    Example:

    >>> rnn = keras.layers.RNN(NALUCell(1, gate="independent"))
    """

    unit_class = NALU
