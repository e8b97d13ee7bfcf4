"""The multiplicative NAC with an NMU-style weight ("NAC•,NMU")."""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.layers.nau_nmu import (
    _SINGLE_WEIGHT_ARGS,
    NMU_BOUNDS,
    _nmu_initializer,
    _SingleWeightUnit,
)
from nalu_keras.validation import check_choice, check_optional_positive, check_positive


@keras.saving.register_keras_serializable(package="nalu_keras")
class BoundedMulNAC(_SingleWeightUnit):
    __doc__ = """A multiplicative NAC whose weight is used as is and kept in [0, 1]
    ("NAC•,NMU" of Madsen & Johansen 2020, Table 1):

        y = exp(log(|x| + ε) @ W),   W ∈ [0, 1]

    that is y_j = Π_i (|x_i| + ε)^{{W_ij}}, with the NMU's weight handling
    (initialization U[0.25, 0.75], projection into [0, 1] after every step,
    the `Sparsity` regularizer) instead of tanh(Ŵ) ⊙ σ(M̂). It isolates
    what the NMU gains from its weight handling from what it gains by
    working on x itself: like every log-space unit it loses the sign of
    negative inputs, and it cannot divide.
{args}        epsilon: positive float, ε in the logarithm (default 1e-7).
        log_mode: `"add"` (default, log(|x| + ε)) or `"clamp"`
            (log(max(|x|, ε))).
        exp_clip: None (default) or a positive float ω capping the exponent.

    Example:

    >>> layer = BoundedMulNAC(1)
    >>> layer.build((None, 3))
    >>> layer.w.assign([[1.0], [1.0], [0.0]])
    >>> layer(np.array([[2.0, 3e5, 7.0]]))  # ≈ [[6e5]]
    """.format(
        args=_SINGLE_WEIGHT_ARGS.format(
            w_initializer="initializer of W (default U[0.25, 0.75], as the NMU's).",
            kwargs_note="",
        )
    )

    BOUNDS = {"w": NMU_BOUNDS}
    INPUT_PENALTY = {"w": "nmu"}
    initial_state_value = 1.0
    ARITHMETIC_KIND = "multiplicative"

    def __init__(self, units, epsilon=1e-7, log_mode="add", exp_clip=None, **kwargs):
        super().__init__(units, **kwargs)
        self.epsilon = check_positive("epsilon", epsilon)
        self.log_mode = check_choice("log_mode", log_mode, nops.LOG_MODES)
        self.exp_clip = check_optional_positive("exp_clip", exp_clip)

    @classmethod
    def _default_initializers(cls):
        return {"w": _nmu_initializer}

    def _apply(self, inputs, w):
        return nops.log_space_product(inputs, w, self.epsilon, self.log_mode, self.exp_clip)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, log_mode=self.log_mode, exp_clip=self.exp_clip)
        return config
