"""The neural arithmetic logic unit of Trask et al. (2018)."""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.layers.base import (
    ArithmeticUnit,
    check_bool,
    check_choice,
    check_optional_positive,
    check_positive,
)
from nalu_keras.layers.nac import _PathWeights

GATES = ("input", "abs_input", "independent")


class _NALUGate:
    """Mixin of the NALU gate, shared by NALU, G-NALU and GatedNAUNMU.

    g = σ(x @ G) (`"input"`), σ(|x| @ G) (`"abs_input"`), optionally with a
    bias `g_bias` inside σ, or σ(G) with G of shape `(units,)`
    (`"independent"`). Used with an `ArithmeticUnit` that calls `_set_gate`
    in `__init__` and `_add_gate_weights` in `build_weights`, and lists "g"
    and "g_bias" in `WEIGHTS`.
    """

    #: How `formula` names the gate's squashing function.
    GATE_SYMBOL = "σ"

    def _set_gate(self, gate, gate_bias):
        """Check `gate` and `gate_bias` and set them as attributes."""
        self.gate = check_choice("gate", gate, GATES)
        self.gate_bias = check_bool("gate_bias", gate_bias)
        if self.gate_bias and self.gate == "independent":
            raise ValueError(
                "`gate_bias=True` has no meaning with gate='independent' (the "
                "gate is already a learned per-output value); use one or the "
                "other."
            )

    def _add_gate_weights(self, shape):
        """Create `g` (`shape`, or `(units,)` for the independent gate) and,
        with `gate_bias`, `g_bias` `(units,)`."""
        gate_shape = (self.units,) if self.gate == "independent" else shape
        self.g = self.add_unit_weight("g", gate_shape)
        if self.gate_bias:
            self.g_bias = self.add_unit_weight("g_bias", (self.units,))

    def gate_logits(self, inputs):
        """The gate before squashing: x @ G (|x| @ G for `"abs_input"`),
        plus `g_bias` with `gate_bias=True`; G itself, shape `(units,)`, for
        the `"independent"` gate (`inputs` is then not used)."""
        if self.gate == "independent":
            return self.g
        source = keras.ops.abs(inputs) if self.gate == "abs_input" else inputs
        logits = keras.ops.matmul(source, self.g)
        if self.gate_bias:
            logits = logits + self.g_bias
        return logits

    def gate_activation(self, logits):
        """The squashing function of the gate: σ (G-NALU: σ_φ)."""
        return keras.ops.sigmoid(logits)

    def gate_value(self, inputs):
        """The gate g in [0, 1] for `inputs` (1 selects the additive path)."""
        return self.gate_activation(self.gate_logits(inputs))

    def gate_expressions(self):
        """The gate of each output as text, for `formula`: e.g.
        "σ(x @ G[:, 0] + b[0])", or "σ(g[0])" for the independent gate."""
        f = self.GATE_SYMBOL
        if self.gate == "independent":
            return [f"{f}(g[{j}])" for j in range(self.units)]
        source = "|x|" if self.gate == "abs_input" else "x"
        return [
            f"{f}({source} @ G[:, {j}]" + (f" + b[{j}])" if self.gate_bias else ")")
            for j in range(self.units)
        ]

    def _gate_effective_weights(self):
        """{"gate": the gate as numpy} for the independent gate (it does not
        depend on the input), else {}."""
        if self.gate == "independent":
            return {"gate": keras.ops.convert_to_numpy(self.gate_activation(self.g))}
        return {}


@keras.saving.register_keras_serializable(package="nalu_keras")
class NALU(_PathWeights, _NALUGate, ArithmeticUnit):
    """The neural arithmetic logic unit (NALU) of Trask et al. (2018).

    A learned gate chooses, per output, between an additive NAC and a NAC
    that works in log space (and so multiplies, divides and takes powers):

        W = tanh(Ŵ) ⊙ σ(M̂)
        a = x @ W
        m = exp(log(|x| + ε) @ W)
        g = σ(x @ G)
        y = g ⊙ a + (1 − g) ⊙ m

    The defaults are the paper's: one Ŵ, M̂ for both paths (tied weights), a
    gate that depends on the input through a full matrix G and has no bias,
    ε = 1e-7, no clipping.

    Numerical safety: where the gate is exactly 1 the output is exactly `a`,
    even if `m` overflows to inf (and where it is exactly 0, exactly `m`);
    the naive formula would give 0 · inf = NaN there, in the output and in
    the gradients. Where 0 < g < 1 and `m` overflows, the output is inf.

    Sign limitation: `m` is computed from |x|, so the multiplicative path
    returns |x|-based products: with inputs (-2, 3) and W = (1, 1) it gives
    +6, not -6. This is the paper's formula, kept on purpose; `iNALU`, `NMU`
    and the NPUs recover the sign.

    Args:
        units: positive int, dimensionality of the output.
        shared_weights: bool, default True (the paper). With False, the
            multiplicative path gets its own weights `w_hat_mul`, `m_hat_mul`.
        gate: how the gate is computed. `"input"` (default, the paper):
            g = σ(x @ G); `"abs_input"`: g = σ(|x| @ G); `"independent"`:
            g = σ(G) with G a learned vector of shape `(units,)`, the same
            for every input.
        gate_bias: bool, default False (the paper). Adds a learned bias
            `g_bias` inside σ for the `"input"` and `"abs_input"` gates.
        epsilon: positive float, ε in the logarithm (default 1e-7).
        log_mode: `"add"` (default, the paper) for log(|x| + ε), or
            `"clamp"` for log(max(|x|, ε)).
        exp_clip: `None` (default) or a positive float ω: the exponent of the
            multiplicative path is capped at ω before exp.
        w_hat_initializer, m_hat_initializer, w_hat_mul_initializer,
        m_hat_mul_initializer, g_initializer, g_bias_initializer:
            initializers (Glorot-uniform for the matrices, zeros for the
            bias, by default).
        *_regularizer, *_constraint: the same per weight, default None.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w_hat, m_hat: Ŵ and M̂, shape `(input_dim, units)`.
        w_hat_mul, m_hat_mul: the multiplicative path's own weights (only
            with `shared_weights=False`).
        g: the gate weight, `(input_dim, units)`, or `(units,)` for the
            independent gate.
        g_bias: the gate bias, `(units,)` (only with `gate_bias=True`).

    Example:

    >>> layer = NALU(1)
    >>> layer.build((None, 2))
    >>> layer.w_hat.assign(np.full((2, 1), 20.0))
    >>> layer.m_hat.assign(np.full((2, 1), 20.0))
    >>> layer.g.assign(np.full((2, 1), -50.0))   # gate -> 0: multiply
    >>> layer(np.array([[3.0, 4.0]]))  # ≈ [[12.0]]
    """

    WEIGHTS = ("w_hat", "m_hat", "w_hat_mul", "m_hat_mul", "g", "g_bias")
    DEFAULT_INITIALIZERS = {"g_bias": "zeros"}
    ARITHMETIC_KIND = "gated"

    def __init__(
        self,
        units,
        shared_weights=True,
        gate="input",
        gate_bias=False,
        epsilon=1e-7,
        log_mode="add",
        exp_clip=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.shared_weights = check_bool("shared_weights", shared_weights)
        self._set_gate(gate, gate_bias)
        self.epsilon = check_positive("epsilon", epsilon)
        self.log_mode = check_choice("log_mode", log_mode, nops.LOG_MODES)
        self.exp_clip = check_optional_positive("exp_clip", exp_clip)

    def build_weights(self, input_dim):
        shape = (input_dim, self.units)
        self._add_path_weights(shape)
        self._add_gate_weights(shape)

    # -- the pieces, exposed for inspection: `W`, `W_mul` (`_PathWeights`)
    # and `gate_logits`, `gate_activation`, `gate_value` (`_NALUGate`).

    def call(self, inputs):
        a = keras.ops.matmul(inputs, self.W)
        z = nops.log_space_exponent(
            inputs, self.W_mul, self.epsilon, self.log_mode, self.exp_clip
        )
        return nops.gate_mix(self.gate_value(inputs), a, z)

    def effective_weights(self):
        return {**self._path_effective_weights(), **self._gate_effective_weights()}

    def formula_weights(self):
        parts = super().formula_weights()
        parts["gate_text"] = self.gate_expressions()
        return parts

    def get_config(self):
        config = super().get_config()
        config.update(
            shared_weights=self.shared_weights,
            gate=self.gate,
            gate_bias=self.gate_bias,
            epsilon=self.epsilon,
            log_mode=self.log_mode,
            exp_clip=self.exp_clip,
        )
        return config
