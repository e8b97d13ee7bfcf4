"""The improved NALU (iNALU) of Schlör, Ring and Hotho (2020)."""

from __future__ import annotations

import keras

from nalu_keras import ops as nops
from nalu_keras.layers.base import (
    ArithmeticUnit,
    check_bool,
    check_optional_positive,
    check_positive,
)
from nalu_keras.layers.nac import _PathWeights

#: Values of the `update_phase` variable (see `iNALU` and
#: `nalu_keras.training_aids.AlternatingUpdates`).
PHASE_ALL, PHASE_WEIGHTS, PHASE_GATE = 0, 1, 2


def _normal(mean, stddev):
    # A config, not an instance: each weight of each layer gets a fresh
    # initializer (a shared unseeded instance would repeat its values).
    return {"class_name": "RandomNormal", "config": {"mean": mean, "stddev": stddev}}


@keras.saving.register_keras_serializable(package="nalu_keras")
class iNALU(_PathWeights, ArithmeticUnit):  # noqa: N801  (the paper's name)
    """The improved neural arithmetic logic unit (iNALU), Schlör et al. (2020).

    A NALU with separate weights for its two paths, a multiplicative path
    that is clipped and recovers the sign of the product, and a gate that
    does not depend on the input:

        W_a = tanh(Ŵ_a) ⊙ σ(M̂_a),   W_m = tanh(Ŵ_m) ⊙ σ(M̂_m)
        a = x @ W_a
        m = exp(min(log(max(|x|, ε)) @ W_m, ω))
        s_j = clip(Π_i (sign(x_i) · |W_m,ij| + 1 − |W_m,ij|), −1, 1)
        g = σ(ĝ)                       (one value per output)
        y = g ⊙ a + (1 − g) ⊙ m ⊙ s

    With W_m = (1, 1) and x = (−2, 3) the output is −6 (a NALU gives +6);
    a 0 input with |W_m| = 1 gives exactly 0. Where the gate is exactly 0 or 1
    the unused path cannot turn the output into NaN.

    Training aids of the paper: in `nalu_keras.training_aids`, alternating
    weight / gate updates (`AlternatingUpdates`, which switches this layer's
    `update_phase`), re-initialization on a stagnating loss
    (`ReinitializeOnStagnation`) and element-wise gradient clipping
    (`inalu_optimizer`); the saturation regularizer is
    `nalu_keras.regularizers.Saturation`, passed as the `*_regularizer` of
    the weights and switched on by `nalu_keras.callbacks.LossTriggerSchedule`
    (the layer tracks the regularizers' strength variables, so a schedule
    reaches the compiled train step; see the example).

    Args:
        units: positive int, dimensionality of the output.
        shared_weights: bool, default False (the paper's "independent
            weights"). With True one Ŵ, M̂ serves both paths (W_a = W_m),
            as in the NALU.
        epsilon: positive float ε of the clamped logarithm (default 1e-7).
        exp_clip: positive float ω, the cap of the exponent (default 20), or
            None for no cap.
        w_hat_initializer, m_hat_initializer: Ŵ_a and M̂_a (or the shared
            Ŵ, M̂). Default N(1, 0.1) and N(−1, 0.1), the paper's runs.
        w_hat_mul_initializer, m_hat_mul_initializer: Ŵ_m and M̂_m, the same
            defaults (only with `shared_weights=False`).
        g_initializer: ĝ, default N(0, 0.1).
        *_regularizer, *_constraint: per weight, default None.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Attributes:
        w_hat, m_hat: Ŵ_a, M̂_a (or the shared Ŵ, M̂), `(input_dim, units)`.
        w_hat_mul, m_hat_mul: Ŵ_m, M̂_m (only with `shared_weights=False`).
        g: the gate ĝ, `(units,)`.
        update_phase: non-trainable scalar. 0 (default): every weight is
            trained; 1: only the path weights get gradients (ĝ is behind a
            stop_gradient); 2: only ĝ does. The forward pass is the same in
            every phase.

    Example:

    >>> layer = iNALU(1)
    >>> layer.build((None, 2))
    >>> layer.w_hat_mul.assign(np.full((2, 1), 20.0))
    >>> layer.m_hat_mul.assign(np.full((2, 1), 20.0))
    >>> layer.g.assign([-50.0])            # gate -> 0: multiply
    >>> layer(np.array([[-2.0, 3.0]]))     # ≈ [[-6.0]]

    The paper's training setup:

    >>> from nalu_keras.regularizers import Saturation
    >>> from nalu_keras.callbacks import LossTriggerSchedule
    >>> from nalu_keras.training_aids import (
    ...     AlternatingUpdates, ReinitializeOnStagnation, inalu_optimizer)
    >>> reg = Saturation(0.0)            # strength 0 until the schedule acts
    >>> layer = iNALU(1, **{f"{n}_regularizer": reg for n in iNALU.WEIGHTS})
    >>> model = keras.Sequential([keras.Input((2,)), layer])
    >>> model.compile(optimizer=inalu_optimizer(), loss="mse")
    >>> model.fit(x, y, batch_size=64, callbacks=[
    ...     AlternatingUpdates(), ReinitializeOnStagnation(),
    ...     LossTriggerSchedule(reg, 0.05, threshold=1.0, warmup_steps=1000)])
    """

    WEIGHTS = ("w_hat", "m_hat", "w_hat_mul", "m_hat_mul", "g")
    DEFAULT_INITIALIZERS = {
        "w_hat": _normal(1.0, 0.1),
        "m_hat": _normal(-1.0, 0.1),
        "w_hat_mul": _normal(1.0, 0.1),
        "m_hat_mul": _normal(-1.0, 0.1),
        "g": _normal(0.0, 0.1),
    }
    ARITHMETIC_KIND = "gated"

    def __init__(
        self,
        units,
        shared_weights=False,
        epsilon=1e-7,
        exp_clip=20.0,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.shared_weights = check_bool("shared_weights", shared_weights)
        self.epsilon = check_positive("epsilon", epsilon)
        self.exp_clip = check_optional_positive("exp_clip", exp_clip)

    def build_weights(self, input_dim):
        self._add_path_weights((input_dim, self.units))
        self.g = self.add_unit_weight("g", (self.units,))
        self.update_phase = self.add_weight(
            name="update_phase", shape=(), initializer="zeros", trainable=False
        )
        # ArithmeticUnit.build then tracks the regularizers' strengths.

    # -- the pieces ----------------------------------------------------------
    @property
    def path_weights(self):
        """The trainable path weights (everything but the gate ĝ)."""
        names = ("w_hat", "m_hat") if self.shared_weights else self.WEIGHTS[:4]
        return [getattr(self, name) for name in names]

    @property
    def gate_weights(self):
        """The trainable gate weights: [ĝ]."""
        return [self.g]

    def _phase_masks(self):
        """(weights_on, gate_on), 1.0 where that group receives gradients."""
        phase = self.update_phase
        weights_on = keras.ops.cast(keras.ops.not_equal(phase, PHASE_GATE), self.compute_dtype)
        gate_on = keras.ops.cast(keras.ops.not_equal(phase, PHASE_WEIGHTS), self.compute_dtype)
        return weights_on, gate_on

    @staticmethod
    def _masked(value, on):
        # value where on == 1; value without gradient where on == 0.
        return value * on + keras.ops.stop_gradient(value) * (1.0 - on)

    def _weights(self):
        weights_on, gate_on = self._phase_masks()
        w = [self._masked(v, weights_on) for v in self.path_weights]
        w_add = nops.nac_weight(w[0], w[1])
        w_mul = w_add if self.shared_weights else nops.nac_weight(w[2], w[3])
        return w_add, w_mul, keras.ops.sigmoid(self._masked(self.g, gate_on))

    # `W` = tanh(Ŵ_a) ⊙ σ(M̂_a) and `W_mul` (`W` when shared): `_PathWeights`.

    def call(self, inputs):
        w_add, w_mul, gate = self._weights()
        a = keras.ops.matmul(inputs, w_add)
        z = nops.log_space_exponent(inputs, w_mul, self.epsilon, "clamp", self.exp_clip)
        sign = nops.sign_recovery(inputs, w_mul)
        return nops.signed_gate_mix(gate, a, z, sign)

    def effective_weights(self):
        weights = self._path_effective_weights()
        weights["gate"] = keras.ops.convert_to_numpy(keras.ops.sigmoid(self.g))
        return weights

    def get_config(self):
        config = super().get_config()
        config.update(
            shared_weights=self.shared_weights,
            epsilon=self.epsilon,
            exp_clip=self.exp_clip,
        )
        return config
