"""What every arithmetic unit shares: argument checks, input handling, weights."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np


def check_units(units):
    """Return `units` if it is a positive int, else raise a ValueError naming it."""
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
        raise ValueError(
            f"Received an invalid value for argument `units`, expected a "
            f"positive integer, got {units!r}."
        )
    return int(units)


def check_positive(name, value):
    """Return `value` as float if it is a finite number > 0, else raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"finite number > 0, got {value!r}."
        )
    return float(value)


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise listing them."""
    if value not in choices:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            f"Expected one of {', '.join(repr(c) for c in choices)}."
        )
    return value


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected True "
            f"or False, got {value!r}."
        )
    return bool(value)


class ArithmeticUnit(keras.layers.Layer):
    """Base class of the arithmetic units: a map from the last axis to `units`.

    Subclasses declare their weights in `WEIGHTS` (names from the papers) and
    implement `build_weights(input_dim)` and `call(inputs)`. The base class
    provides the checks, the per-weight initializer / regularizer / constraint
    arguments, `compute_output_shape`, `get_config` and `effective_weights`.

    Class attributes:
        WEIGHTS: the names of the weights this unit may create.
        DEFAULT_INITIALIZERS: initializer per weight name.
        initial_state_value: the neutral recurrent state (0 for additive units,
            1 for multiplicative ones), used by `ArithmeticCell`.
    """

    WEIGHTS: tuple = ()
    DEFAULT_INITIALIZERS: dict = {}
    initial_state_value = 0.0

    def __init__(self, units, **kwargs):
        options = {
            key: kwargs.pop(key)
            for key in list(kwargs)
            if key.rsplit("_", 1)[0] in self.WEIGHTS
            and key.rsplit("_", 1)[1] in ("initializer", "regularizer", "constraint")
        }
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self._initializers = {}
        self._regularizers = {}
        self._constraints = {}
        for name in self.WEIGHTS:
            default = self.DEFAULT_INITIALIZERS.get(name, "glorot_uniform")
            self._initializers[name] = keras.initializers.get(
                options.get(f"{name}_initializer", default)
            )
            self._regularizers[name] = keras.regularizers.get(
                options.get(f"{name}_regularizer")
            )
            self._constraints[name] = keras.constraints.get(
                options.get(f"{name}_constraint")
            )

    # -- weights -----------------------------------------------------------
    def add_unit_weight(self, name, shape):
        """Create the weight `name` with its configured initializer etc."""
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=self._initializers[name],
            regularizer=self._regularizers[name],
            constraint=self._constraints[name],
            trainable=True,
        )

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank >= 2 "
                f"(batch, ..., features); got shape {tuple(input_shape)}."
            )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last axis of the input to {type(self).__name__} must be "
                f"known; got shape {tuple(input_shape)}."
            )
        self.input_dim = int(input_dim)
        self.build_weights(self.input_dim)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.input_dim})

    def build_weights(self, input_dim):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # -- reading the learned formula ----------------------------------------
    def effective_weights(self):
        """The matrices the unit actually applies, as numpy arrays by name."""
        raise NotImplementedError

    # -- serialization ------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        for name in self.WEIGHTS:
            config[f"{name}_initializer"] = keras.initializers.serialize(
                self._initializers[name]
            )
            config[f"{name}_regularizer"] = keras.regularizers.serialize(
                self._regularizers[name]
            ) if self._regularizers[name] is not None else None
            config[f"{name}_constraint"] = keras.constraints.serialize(
                self._constraints[name]
            ) if self._constraints[name] is not None else None
        return config
