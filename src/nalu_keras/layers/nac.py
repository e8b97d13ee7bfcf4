"""The neural accumulators of Trask et al. (2018): additive and multiplicative NAC."""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.layers.base import (
    ArithmeticUnit,
    check_choice,
    check_optional_positive,
    check_positive,
)


class _NACWeights(ArithmeticUnit):
    """Shared by the NAC family: W = tanh(Ŵ) ⊙ σ(M̂) from `w_hat` and `m_hat`."""

    WEIGHTS = ("w_hat", "m_hat")

    def build_weights(self, input_dim):
        self.w_hat = self.add_unit_weight("w_hat", (input_dim, self.units))
        self.m_hat = self.add_unit_weight("m_hat", (input_dim, self.units))

    @property
    def W(self):
        """The effective weight tanh(Ŵ) ⊙ σ(M̂), as a tensor."""
        return nops.nac_weight(self.w_hat, self.m_hat)

    def effective_weights(self):
        return {"W": keras.ops.convert_to_numpy(self.W)}


class _PathWeights:
    """Mixin of the gated NAC units (NALU, G-NALU, iNALU): Ŵ, M̂ of the
    additive path and, unless `shared_weights`, Ŵ_mul, M̂_mul of the
    multiplicative one, each pair mapped to a weight by `_nac_weight`
    (tanh(Ŵ) ⊙ σ(M̂); G-NALU: tanh_φ(Ŵ) ⊙ σ_φ(M̂)).

    Used with an `ArithmeticUnit` that sets `shared_weights` and lists the
    four names in `WEIGHTS`.
    """

    _nac_weight = staticmethod(nops.nac_weight)

    def _add_path_weights(self, shape):
        """Create `w_hat`, `m_hat` and, unless shared, `w_hat_mul`, `m_hat_mul`."""
        self.w_hat = self.add_unit_weight("w_hat", shape)
        self.m_hat = self.add_unit_weight("m_hat", shape)
        if not self.shared_weights:
            self.w_hat_mul = self.add_unit_weight("w_hat_mul", shape)
            self.m_hat_mul = self.add_unit_weight("m_hat_mul", shape)

    @property
    def W(self):
        """The additive path's weight tanh(Ŵ) ⊙ σ(M̂) (G-NALU: tanh_φ, σ_φ)."""
        return self._nac_weight(self.w_hat, self.m_hat)

    @property
    def W_mul(self):
        """The multiplicative path's weight (the same as `W` when tied)."""
        if self.shared_weights:
            return self.W
        return self._nac_weight(self.w_hat_mul, self.m_hat_mul)

    def _path_effective_weights(self):
        """{"W": W} plus "W_mul" unless shared, as numpy arrays."""
        to_np = keras.ops.convert_to_numpy
        weights = {"W": to_np(self.W)}
        if not self.shared_weights:
            weights["W_mul"] = to_np(self.W_mul)
        return weights


class _LogSpaceProduct:
    """Mixin of the log-space product units (NAC•, NAC•,σ): ε, the log mode
    and the exponent cap, and y = exp(log(|x| + ε) @ W) from the unit's `W`.

    Used with an `ArithmeticUnit` that provides the weight `W`.
    """

    def __init__(self, units, epsilon=1e-7, log_mode="add", exp_clip=None, **kwargs):
        super().__init__(units, **kwargs)
        self.epsilon = check_positive("epsilon", epsilon)
        self.log_mode = check_choice("log_mode", log_mode, nops.LOG_MODES)
        self.exp_clip = check_optional_positive("exp_clip", exp_clip)

    def call(self, inputs):
        return nops.log_space_product(
            inputs, self.W, self.epsilon, self.log_mode, self.exp_clip
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            epsilon=self.epsilon, log_mode=self.log_mode, exp_clip=self.exp_clip
        )
        return config


@keras.saving.register_keras_serializable(package="nalu_keras")
class NAC(_NACWeights):
    """The additive neural accumulator ("NAC+") of Trask et al. (2018).

    It computes

        W = tanh(Ŵ) ⊙ σ(M̂)
        y = x @ W

    with no bias. The parametrization keeps W in (-1, 1) and makes -1, 0 and
    1 easy to reach (Ŵ, M̂ saturated), so a trained NAC adds and subtracts
    selected inputs exactly and keeps doing so far outside the training range.

    Args:
        units: positive int, dimensionality of the output.
        w_hat_initializer, m_hat_initializer: initializers of Ŵ and M̂
            (default `"glorot_uniform"`; the paper gives none).
        w_hat_regularizer, m_hat_regularizer: optional regularizers.
        w_hat_constraint, m_hat_constraint: optional constraints.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w_hat, m_hat: the weights Ŵ and M̂, shape `(input_dim, units)`.
        W: the effective weight tanh(Ŵ) ⊙ σ(M̂).

    Example:

    >>> layer = NAC(1)
    >>> y = layer(np.array([[2.0, 3.0]]))
    >>> layer.w_hat.assign(np.full((2, 1), 20.0))
    >>> layer.m_hat.assign(np.full((2, 1), 20.0))
    >>> layer(np.array([[2e6, 3e6]]))  # ≈ [[5e6]]
    """

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.W)


@keras.saving.register_keras_serializable(package="nalu_keras")
class MulNAC(_LogSpaceProduct, _NACWeights):
    """The multiplicative neural accumulator ("NAC•") of Trask et al. (2018).

    It computes

        W = tanh(Ŵ) ⊙ σ(M̂)
        y = exp(log(|x| + ε) @ W)

    that is y_j = Π_i (|x_i| + ε)^{W_ij}: a product (W = 1), a quotient
    (W = -1) or an omission (W = 0) of the inputs.

    Sign limitation: the log path sees |x| only, so (-2)·3 gives +6. This is
    the paper's formula; `iNALU`, `NMU` and `NPU` recover the sign.

    Args:
        units: positive int, dimensionality of the output.
        epsilon: positive float, ε inside the logarithm (default 1e-7).
        log_mode: `"add"` for log(|x| + ε) (the paper) or `"clamp"` for
            log(max(|x|, ε)), exact for |x| >= ε.
        exp_clip: `None` (default, the paper) or a positive float ω: the
            exponent is capped at ω before exp, so the output is at most e^ω.
        w_hat_initializer, m_hat_initializer, w_hat_regularizer,
        m_hat_regularizer, w_hat_constraint, m_hat_constraint: as in `NAC`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Example:

    >>> layer = MulNAC(1)
    >>> layer.build((None, 2))
    >>> layer.w_hat.assign([[20.0], [-20.0]])
    >>> layer.m_hat.assign([[20.0], [20.0]])
    >>> layer(np.array([[6.0, 3.0]]))  # ≈ [[2.0]], i.e. 6 / 3
    """

    initial_state_value = 1.0
