"""The neural power units of Heim, Pevný and Šmídl (2020): NPU, RealNPU and
their gate-free ("naive") forms."""

from __future__ import annotations

import keras
import numpy as np

from nalu_keras import ops as nops
from nalu_keras.layers.base import (
    ArithmeticUnit,
    check_choice,
    check_optional_positive,
)

GATE_GRADIENTS = ("straight_through", "blocked")


def machine_epsilon(dtype):
    """The machine epsilon of a float dtype name (bfloat16 included)."""
    if str(dtype) == "bfloat16":
        return 2.0**-7
    return float(np.finfo(str(dtype)).eps)


class _PowerUnit(ArithmeticUnit):
    """What the four NPUs share; subclasses set `COMPLEX` and `GATED`."""

    COMPLEX = True
    GATED = True
    DEFAULT_INITIALIZERS = {
        "w_re": "glorot_uniform",
        "w_im": "zeros",
        "g": {"class_name": "Constant", "config": {"value": 0.5}},
    }
    initial_state_value = 1.0
    ARITHMETIC_KIND = "multiplicative"

    def __init__(self, units, epsilon=None, **kwargs):
        # Only the gated units take `gate_gradient`; for the naive ones it is
        # left in kwargs, which keras.layers.Layer rejects.
        if self.GATED:
            gate_gradient = kwargs.pop("gate_gradient", "straight_through")
        super().__init__(units, **kwargs)
        self.epsilon = check_optional_positive("epsilon", epsilon)
        if self.GATED:
            self.gate_gradient = check_choice("gate_gradient", gate_gradient, GATE_GRADIENTS)

    def build_weights(self, input_dim):
        shape = (input_dim, self.units)
        self.w_re = self.add_unit_weight("w_re", shape)
        if self.COMPLEX:
            self.w_im = self.add_unit_weight("w_im", shape)
        if self.GATED:
            self.g = self.add_unit_weight("g", (input_dim,))
        # ArithmeticUnit.build then tracks the regularizers' strengths, so a
        # schedule (e.g. StepMultiplySchedule for the paper's L1) reaches the
        # compiled train step.

    @property
    def epsilon_value(self):
        """ε in use: `epsilon`, or the machine epsilon of the compute dtype."""
        if self.epsilon is not None:
            return self.epsilon
        return machine_epsilon(self.compute_dtype)

    @property
    def gate(self):
        """The relevance gate ĝ = clip(g, 0, 1), shape `(input_dim,)` (None if naive).

        With `gate_gradient="straight_through"` the clip is forward-only: the
        gradient reaches g unchanged even where g is outside [0, 1]. With
        `"blocked"` it is a plain clip, whose gradient is 0 there.
        """
        if not self.GATED:
            return None
        if self.gate_gradient == "straight_through":
            return nops.straight_through_clip(self.g, 0.0, 1.0)
        return keras.ops.clip(self.g, 0.0, 1.0)

    def call(self, inputs):
        w_im = self.w_im if self.COMPLEX else None
        return nops.npu_power(inputs, self.w_re, w_im, self.gate, self.epsilon_value)

    def effective_weights(self):
        to_np = keras.ops.convert_to_numpy
        weights = {"W_re": to_np(self.w_re)}
        if self.COMPLEX:
            weights["W_im"] = to_np(self.w_im)
        if self.GATED:
            weights["gate"] = to_np(keras.ops.clip(self.g, 0.0, 1.0))
        return weights

    def formula_weights(self):
        """Exponents for `formula`: W_re, with the rows of inputs whose gate is
        below 0.5 set to 0 (such an input is mostly replaced by the constant
        1). W_im is not shown: the formula reads the unit as Π x^{W_re}."""
        weights = self.effective_weights()
        exponents = np.array(weights["W_re"], dtype=np.float64)
        if self.GATED:
            exponents[weights["gate"] < 0.5, :] = 0.0
        return {"add": None, "mul": exponents, "gate": None}

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        if self.GATED:
            config["gate_gradient"] = self.gate_gradient
        return config


_COMMON_ARGS = """
    Args:
        units: positive int, dimensionality of the output.
        epsilon: None (default: the machine epsilon of the layer's compute
            dtype, as in the paper) or a positive float, ε added to |x|.{gate_arg}
        {weights}:
            initializers, default {defaults}.
        *_regularizer, *_constraint: per weight, default None. The paper's
            penalty β · ||θ||₁ is `nalu_keras.regularizers.L1(β)` given for
            every weight, with β raised by
            `nalu_keras.callbacks.StepMultiplySchedule`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.
"""

_GATE_ARG = """
        gate_gradient: `"straight_through"` (default, the reference
            implementation) or `"blocked"`. The gate is clipped to [0, 1] in
            the forward pass either way; straight-through passes the gradient
            to g unchanged (g + stop_gradient(clip(g) − g)), so a g pushed
            outside [0, 1] can come back; blocked uses a plain clip (gradient
            0 outside [0, 1], as in a PyTorch port)."""


@keras.saving.register_keras_serializable(package="nalu_keras")
class NPU(_PowerUnit):
    __doc__ = """The neural power unit (NPU) of Heim, Pevný and Šmídl (2020).

    A product of powers Π_i x_i^{{W_ij}} with real or complex exponents, that
    works for negative inputs (written as |x| e^{{iπ}}) and keeps the real
    part. A relevance gate per input can replace an input by 1:

        ĝ = clip(g, 0, 1)                         (one value per input)
        r = ĝ ⊙ (|x| + ε) + (1 − ĝ)
        k = ĝ ⊙ π·[x < 0]
        y = exp(log(r) @ W_re − k @ W_im) ⊙ cos(k @ W_re + log(r) @ W_im)

    Integer exponents give signed products and quotients ((−2)·3 = −6,
    6 / (−3) = −2); fractional ones give the real part of the principal
    complex power, e.g. (−8)^{{1/3}} → 2·cos(π/3) = 1 (not the real cube
    root −2).
{args}
    Attributes:
        w_re, w_im: W_re and W_im, `(input_dim, units)`.
        g: the gate before clipping, `(input_dim,)`.

    Example:

    >>> layer = NPU(1)
    >>> layer.build((None, 2))
    >>> layer.w_re.assign([[1.0], [-1.0]])
    >>> layer.g.assign([1.0, 1.0])
    >>> layer(np.array([[6.0, -3.0]]))   # ≈ [[-2.0]]
    """.format(
        args=_COMMON_ARGS.format(
            gate_arg=_GATE_ARG,
            weights="w_re_initializer, w_im_initializer, g_initializer",
            defaults="Glorot-uniform, zeros and 0.5 (the paper)",
        )
    )

    WEIGHTS = ("w_re", "w_im", "g")

    def __init__(self, units, epsilon=None, gate_gradient="straight_through", **kwargs):
        super().__init__(units, epsilon=epsilon, gate_gradient=gate_gradient, **kwargs)


@keras.saving.register_keras_serializable(package="nalu_keras")
class RealNPU(_PowerUnit):
    __doc__ = """The real neural power unit (RealNPU) of Heim et al. (2020).

    The NPU with W_im = 0:

        ĝ = clip(g, 0, 1),  r = ĝ ⊙ (|x| + ε) + (1 − ĝ),  k = ĝ ⊙ π·[x < 0]
        y = exp(log(r) @ W) ⊙ cos(k @ W)

    The cosine carries the sign: an odd integer power of a negative input
    gives cos(π) = −1, an even one cos(2π) = 1.
{args}
    Attributes:
        w_re: the exponents W, `(input_dim, units)`.
        g: the gate before clipping, `(input_dim,)`.

    Example:

    >>> layer = RealNPU(1)
    >>> layer.build((None, 2))
    >>> layer.w_re.assign([[1.0], [1.0]])
    >>> layer.g.assign([1.0, 1.0])
    >>> layer(np.array([[-2.0, 3.0]]))   # ≈ [[-6.0]]
    """.format(
        args=_COMMON_ARGS.format(
            gate_arg=_GATE_ARG,
            weights="w_re_initializer, g_initializer",
            defaults="Glorot-uniform and 0.5 (the paper)",
        )
    )

    WEIGHTS = ("w_re", "g")
    COMPLEX = False

    def __init__(self, units, epsilon=None, gate_gradient="straight_through", **kwargs):
        super().__init__(units, epsilon=epsilon, gate_gradient=gate_gradient, **kwargs)


@keras.saving.register_keras_serializable(package="nalu_keras")
class NaiveNPU(_PowerUnit):
    __doc__ = """The NPU without relevance gate (NaiveNPU), Heim et al. (2020).

    The NPU with ĝ = 1 for every input:

        r = |x| + ε,  k = π·[x < 0]
        y = exp(log(r) @ W_re − k @ W_im) ⊙ cos(k @ W_re + log(r) @ W_im)
{args}
    Attributes:
        w_re, w_im: W_re and W_im, `(input_dim, units)`.

    Example:

    >>> layer = NaiveNPU(1)
    >>> layer.build((None, 1))
    >>> layer.w_re.assign([[0.5]])
    >>> layer(np.array([[9.0]]))   # ≈ [[3.0]]
    """.format(
        args=_COMMON_ARGS.format(
            gate_arg="",
            weights="w_re_initializer, w_im_initializer",
            defaults="Glorot-uniform and zeros (the paper)",
        )
    )

    WEIGHTS = ("w_re", "w_im")
    GATED = False


@keras.saving.register_keras_serializable(package="nalu_keras")
class RealNaiveNPU(_PowerUnit):
    __doc__ = """The real NPU without relevance gate (RealNaiveNPU), Heim et al. (2020).

    The NPU with W_im = 0 and ĝ = 1:

        y = exp(log(|x| + ε) @ W) ⊙ cos(π·[x < 0] @ W)
{args}
    Attributes:
        w_re: the exponents W, `(input_dim, units)`.

    Example:

    >>> layer = RealNaiveNPU(1)
    >>> layer.build((None, 2))
    >>> layer.w_re.assign([[2.0], [1.0]])
    >>> layer(np.array([[-3.0, 2.0]]))   # ≈ [[18.0]]
    """.format(
        args=_COMMON_ARGS.format(
            gate_arg="",
            weights="w_re_initializer",
            defaults="Glorot-uniform (the paper)",
        )
    )

    WEIGHTS = ("w_re",)
    COMPLEX = False
    GATED = False
