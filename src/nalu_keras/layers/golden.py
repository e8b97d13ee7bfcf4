"""The golden-ratio NALU (G-NALU) and the sigmoid multiplicative NAC (NAC•,σ)."""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.layers.base import ArithmeticUnit
from nalu_keras.layers.nac import _LogSpaceProduct
from nalu_keras.layers.nalu import NALU


@keras.saving.register_keras_serializable(package="nalu_keras")
class GNALU(NALU):
    """The golden-ratio NALU (G-NALU) of the "Primer" benchmark (Mistry et al.).

    A `NALU` whose tanh and σ, in the NAC weight and in the gate, use the
    base φ = (1 + √5) / 2 instead of e:

        tanh_φ(u) = (φ^{2u} − 1) / (φ^{2u} + 1),   σ_φ(u) = 1 / (1 + φ^{−u})
        W = tanh_φ(Ŵ) ⊙ σ_φ(M̂)
        a = x @ W
        m = exp(log(|x| + ε) @ W)
        g = σ_φ(x @ G)
        y = g ⊙ a + (1 − g) ⊙ m

    Since tanh_φ(u) = tanh(u ln φ) and ln φ ≈ 0.48, the functions are about
    half as steep, so they saturate later and their gradients vanish later.
    The multiplicative path is unchanged. Every option of `NALU` carries
    over (separate weights, gate kinds, gate bias, ε, log mode, clipping);
    with `shared_weights=False` both paths use the golden NAC weight, and
    the `"independent"` gate is σ_φ(G).

    Args:
        units: positive int, dimensionality of the output.
        shared_weights, gate, gate_bias, epsilon, log_mode, exp_clip: as in
            `NALU` (paper defaults: True, `"input"`, False, 1e-7, `"add"`,
            None).
        *_initializer, *_regularizer, *_constraint: per weight, as in `NALU`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Example:

    >>> layer = GNALU(1)
    >>> layer.build((None, 2))
    >>> layer.w_hat.assign(np.full((2, 1), 40.0))
    >>> layer.m_hat.assign(np.full((2, 1), 40.0))
    >>> layer.g.assign(np.full((2, 1), 100.0))   # gate -> 1: add
    >>> layer(np.array([[3e5, 4e5]]))  # ≈ [[7e5]]
    """

    GATE_SYMBOL = "σ_φ"
    # `W` and `W_mul` (NALU's) apply it: tanh_φ(Ŵ) ⊙ σ_φ(M̂).
    _nac_weight = staticmethod(nops.golden_nac_weight)

    def gate_activation(self, logits):
        """The squashing function of the gate: σ_φ (the logits are NALU's)."""
        return nops.golden_sigmoid(logits)


@keras.saving.register_keras_serializable(package="nalu_keras")
class SigmoidMulNAC(_LogSpaceProduct, ArithmeticUnit):
    """The sigmoid multiplicative NAC ("NAC•,σ") of Madsen & Johansen (2020).

    A multiplicative NAC whose weight is σ(Ŵ) ∈ (0, 1) instead of
    tanh(Ŵ) ⊙ σ(M̂):

        W = σ(Ŵ)
        y = exp(log(|x| + ε) @ W)

    that is y_j = Π_i (|x_i| + ε)^{W_ij}: it can multiply (W = 1) and leave
    inputs out (W = 0) but not divide, and, like every log-space unit, it
    loses the sign of negative inputs ((-2)·3 gives +6).

    Args:
        units: positive int, dimensionality of the output.
        epsilon: positive float, ε in the logarithm (default 1e-7).
        log_mode: `"add"` (default) for log(|x| + ε) or `"clamp"` for
            log(max(|x|, ε)), exact for |x| >= ε.
        exp_clip: None (default) or a positive float ω capping the exponent.
        w_hat_initializer: default `"glorot_uniform"`.
        w_hat_regularizer, w_hat_constraint: default None.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w_hat: Ŵ, shape `(input_dim, units)`.
        W: the weight σ(Ŵ).

    Example:

    >>> layer = SigmoidMulNAC(1)
    >>> layer.build((None, 3))
    >>> layer.w_hat.assign([[40.0], [40.0], [-40.0]])
    >>> layer(np.array([[3.0, 5.0, 7.0]]))  # ≈ [[15.0]]
    """

    WEIGHTS = ("w_hat",)
    initial_state_value = 1.0

    def build_weights(self, input_dim):
        # (ArithmeticUnit.build tracks the regularizers' strengths.)
        self.w_hat = self.add_unit_weight("w_hat", (input_dim, self.units))

    @property
    def W(self):
        """The weight σ(Ŵ)."""
        return nops.sigmoid_weight(self.w_hat)

    def effective_weights(self):
        return {"W": keras.ops.convert_to_numpy(self.W)}
