"""Regularizers of the arithmetic-unit papers, with a schedulable strength.

Every regularizer here computes `strength * penalty(...)`, where `strength` is
a scalar `keras.Variable` (non-trainable) and the penalty is one of the
formulas in `nalu_keras.ops`. Keeping the strength in a variable lets a
callback (see `nalu_keras.callbacks`) change it during `fit`, and a compiled
train step sees the new value.

The variable has to be *tracked by the model* for that to hold on the JAX
backend: Keras' compiled JAX train step only carries the model's own
variables (trainable, non-trainable, optimizer, metrics) through the traced
function; any other variable read inside it is frozen into the compiled code
as a constant. Every unit of this package (`ArithmeticUnit.build`)
therefore calls `track_strengths` for the regularizers given through its
`*_regularizer` arguments (`NAU`, `NMU` and `GatedNAUNMU` add their
out-of-bounds and input regularizers), which makes the strength variables
non-trainable weights of the layer (saved and restored with the model, too). For another
layer, call `track_strengths(self, regularizers)` inside its `build`. The
schedule callbacks check that their regularizers are tracked and raise
otherwise.

Regularizers:

| class              | penalty                                           | paper        |
| ------------------ | ------------------------------------------------- | ------------ |
| `Sparsity`         | mean min(|W|, 1 − |W|) or mean W²(1 − |W|)²       | NAU/NMU      |
| `OutOfBounds`      | mean relu(low − W) + relu(W − high)               | NAU/NMU      |
| `InputRegularizer` | R_z: mean (1 − W)(1 − x̄)² or (1 − |W|) x̄²        | NAU/NMU      |
| `Saturation`       | mean max(t − |p|, 0), t = 20                      | iNALU        |
| `L1`               | Σ |p|                                             | NPU          |
"""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.validation import (
    check_choice,
    check_finite,
    check_non_negative,
    check_positive,
)

STRENGTHS_ATTRIBUTE = "_regularizer_strengths"


class ArithmeticRegularizer(keras.regularizers.Regularizer):
    """Base class: `strength * penalty(...)` with the strength in a variable.

    Subclasses implement `penalty(...)` (unscaled) and extend `get_config`.

    Args:
        strength: finite float >= 0, the initial value of the strength.

    Attributes:
        strength_variable: the scalar non-trainable `keras.Variable` holding
            the strength. Schedules assign to it; layers track it (see
            `track_strengths`).
        strength: the current strength, as a Python float.
    """

    def __init__(self, strength=1.0):
        self.strength_variable = keras.Variable(
            check_non_negative("strength", strength),
            shape=(),
            dtype="float32",
            trainable=False,
            name=f"{type(self).__name__.lower()}_strength",
        )

    @property
    def strength(self):
        return float(keras.ops.convert_to_numpy(self.strength_variable.value))

    def assign_strength(self, value):
        """Set the strength to `value` (a finite float >= 0)."""
        self.strength_variable.assign(check_non_negative("strength", value))

    def penalty(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        # Arrays (numpy included) become backend tensors; names pass as is.
        args = [a if isinstance(a, str) else keras.ops.convert_to_tensor(a) for a in args]
        value = self.penalty(*args)
        return keras.ops.cast(self.strength_variable, value.dtype) * value

    def get_config(self):
        return {"strength": self.strength}


@keras.saving.register_keras_serializable(package="nalu_keras")
class Sparsity(ArithmeticRegularizer):
    """The NAU/NMU sparsity regularizer of Madsen & Johansen (2020).

    It is 0 exactly when every weight is -1, 0 or 1 (an exact formula) and
    positive in between:

        "linear":  strength · mean(min(|W|, 1 − |W|))
        "squared": strength · mean(W² (1 − |W|)²)

    The paper's experiments use "linear" with the strength ramped up by
    `LinearWarmupSchedule` (λ̂ = 10 from step 1e6 to 2e6 for an NMU model,
    λ̂ = 0.01 from 5e3 to 5e4 for an NAU model).

    Args:
        strength: finite float >= 0 (default 1.0).
        shape: `"linear"` (default) or `"squared"`.

    Example:

    >>> reg = Sparsity(0.0)
    >>> layer = NAU(2, w_regularizer=reg)
    >>> # ... LinearWarmupSchedule(reg, 0.01, 5_000, 50_000) in fit's callbacks
    """

    def __init__(self, strength=1.0, shape="linear"):
        super().__init__(strength)
        self.shape = check_choice("shape", shape, nops.SPARSITY_SHAPES)

    def penalty(self, w):
        return nops.sparsity_penalty(w, self.shape)

    def get_config(self):
        return {**super().get_config(), "shape": self.shape}


@keras.saving.register_keras_serializable(package="nalu_keras")
class OutOfBounds(ArithmeticRegularizer):
    """Penalizes weights outside `[low, high]`:

        strength · mean(relu(low − W) + relu(W − high))

    With the default [-1, 1] this is mean(relu(|W| − 1)), the penalty that
    Madsen & Johansen pair with clamping W in the forward pass (the NAU's
    and NMU's `weight_bounds="clamp"` create it themselves; for an NMU the
    bounds are [0, 1]).

    Args:
        strength: finite float >= 0 (default 1.0).
        low, high: finite floats, low < high (default -1 and 1).
    """

    def __init__(self, strength=1.0, low=-1.0, high=1.0):
        super().__init__(strength)
        for name, value in (("low", low), ("high", high)):
            check_finite(name, value)
        if not low < high:
            raise ValueError(
                f"`low` must be smaller than `high`; got low={low!r}, "
                f"high={high!r}."
            )
        self.low = float(low)
        self.high = float(high)

    def penalty(self, w):
        return nops.out_of_bounds_penalty(w, self.low, self.high)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package="nalu_keras")
class InputRegularizer(ArithmeticRegularizer):
    """The input regularizer R_z of Madsen & Johansen (2020).

    It pushes the inputs that a unit leaves out toward the neutral element
    of the unit's operation, which helps when the inputs come from a learned
    upstream network (a CNN in their MNIST experiments):

        NMU: strength · mean_ij (1 − W_ij)(1 − x̄_i)²
        NAU: strength · mean_ij (1 − |W_ij|) x̄_i²

    where x̄ is the mean input since the last optimizer step, i.e. the mean
    of the current batch over every axis but the last.

    This is not a weight regularizer (it needs the inputs): pass it as the
    `input_regularizer` argument of `NAU`, `NMU` or `GatedNAUNMU`. The layer
    calls `regularizer(W, inputs, unit)` in its forward pass and adds the
    result with `add_loss`. (Keras does not collect `add_loss` from inside
    a recurrent loop on the JAX backend, so do not use it on a unit that
    runs inside `ArithmeticCell`.)

    Args:
        strength: finite float >= 0 (default 1.0).
    """

    def penalty(self, w, inputs, unit):
        inputs = keras.ops.convert_to_tensor(inputs)
        axes = tuple(range(len(inputs.shape) - 1))
        x_mean = keras.ops.mean(inputs, axis=axes)
        return nops.input_penalty(w, x_mean, unit)


@keras.saving.register_keras_serializable(package="nalu_keras")
class Saturation(ArithmeticRegularizer):
    """The iNALU saturation regularizer (Schlör et al. 2020):

        strength · mean(max(threshold − |p|, 0))

    It pushes the parameters Ŵ, M̂ beyond ±threshold, where tanh(Ŵ) ⊙ σ(M̂)
    is exactly -1, 0 or 1. The paper uses strength 0.05, threshold 20, and
    applies it only once the loss is below 1 after a warm-up
    (`LossTriggerSchedule`).

    Args:
        strength: finite float >= 0 (default 0.05).
        threshold: positive float (default 20.0).
    """

    def __init__(self, strength=0.05, threshold=20.0):
        super().__init__(strength)
        self.threshold = check_positive("threshold", threshold)

    def penalty(self, p):
        return nops.saturation_penalty(p, self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="nalu_keras")
class L1(ArithmeticRegularizer):
    """The L1 penalty of the NPU paper (Heim et al. 2020): strength · Σ |p|.

    The paper multiplies β by 10 every 10⁴ steps from β_start up to β_end
    (`StepMultiplySchedule`). Unlike `keras.regularizers.L1`, the strength
    lives in a variable, so the schedule reaches a compiled train step.

    Args:
        strength: finite float >= 0 (default 0.01).
    """

    def __init__(self, strength=0.01):
        super().__init__(strength)

    def penalty(self, p):
        return nops.l1_penalty(p)


def strength_variables(regularizers):
    """The distinct strength variables of `regularizers` (None entries skipped)."""
    found = []
    for regularizer in regularizers:
        variable = getattr(regularizer, "strength_variable", None)
        if variable is not None and not any(variable is v for v in found):
            found.append(variable)
    return found


def track_strengths(layer, regularizers):
    """Make the strength variables of `regularizers` weights of `layer`.

    Call it inside `layer.build` (a built Keras layer accepts no new state).
    The variables become non-trainable weights of the layer, so the compiled
    train step carries them (see the module docstring) and a saved model
    stores their current values. Entries that are None or not one of this
    module's regularizers are ignored; a variable shared by several
    regularizers is tracked once.

    Calls add up: the variables of a later call are appended to those already
    tracked on `layer` (each variable once), so a subclass and its base class
    can each track their own regularizers without replacing the other's.

    Returns:
        The list of every variable tracked on `layer` this way, in order.
    """
    existing = list(getattr(layer, STRENGTHS_ATTRIBUTE, None) or [])
    new = [
        variable
        for variable in strength_variables(regularizers)
        if not any(variable is known for known in existing)
    ]
    variables = existing + new
    if new or not hasattr(layer, STRENGTHS_ATTRIBUTE):
        setattr(layer, STRENGTHS_ATTRIBUTE, variables)
    return variables


class _Sum:
    """A weight regularizer summing several (None entries skipped); internal."""

    def __init__(self, *regularizers):
        self.regularizers = [r for r in regularizers if r is not None]

    def __call__(self, x):
        total = self.regularizers[0](x)
        for regularizer in self.regularizers[1:]:
            total = total + regularizer(x)
        return total


def combine(*regularizers):
    """One callable applying each non-None regularizer and summing, or None."""
    present = [r for r in regularizers if r is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return _Sum(*present)
