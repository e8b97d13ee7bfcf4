"""Initializers of the arithmetic units' weights.

`NACVarianceUniform` is the initialization of Ŵ and M̂ used by Madsen &
Johansen's reference implementation for the NAC, NAC• and NALU: both drawn
from U[−r, r], with r chosen so that the effective weight
W = tanh(Ŵ) ⊙ σ(M̂) has the variance 2 / max(fan_in + fan_out, `min_fan`).
(`NAUUniform`, the NAU's initialization, lives with the NAU.)
"""

from __future__ import annotations

import math
import numbers

import keras

from nalu_keras.validation import check_positive


def nac_weight_variance(r):
    """Var(tanh(u) · σ(v)) for u, v independent and uniform on [−r, r].

    tanh is odd, so E[W] = 0 and Var(W) = E[tanh²(u)] · E[σ²(v)], with
    E[tanh²(u)] = 1 − tanh(r) / r and E[σ²(v)] = (r − tanh(r/2)) / (2r)
    (from ∫tanh² = u − tanh u and ∫σ² = softplus − σ).
    """
    r = check_positive("r", r)
    return (1.0 - math.tanh(r) / r) * (r - math.tanh(r / 2.0)) / (2.0 * r)


def nac_uniform_limit(fan_in, fan_out, min_fan=5.0, gain=2.0):
    """The r with Var(tanh(u) σ(v)) = gain / max(fan_in + fan_out, min_fan).

    Var(W) grows from 0 (r → 0) toward 1/2 (r → ∞), so a target in (0, 1/2)
    has exactly one solution, found by bisection to float precision. For
    100 → 2 it is r ≈ 0.504; for 2 → 1 (fan clamped to 5, target 0.4) r ≈ 9.47.
    """
    fan = max(float(fan_in) + float(fan_out), float(min_fan))
    target = float(gain) / fan
    if not 0.0 < target < 0.5:
        raise ValueError(
            f"The NAC weight variance cannot reach {gain}/{fan:g} = {target:g}; it must lie in "
            "(0, 0.5): use a larger min_fan or a smaller gain."
        )
    low, high = 1e-6, 1.0
    while nac_weight_variance(high) < target:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if nac_weight_variance(middle) < target:
            low = middle
        else:
            high = middle
        if high - low <= 1e-15 * high:
            break
    return 0.5 * (low + high)


def _fans(shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        size = shape[0] if shape else 1
        return size, size
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@keras.saving.register_keras_serializable(package="nalu_keras")
class NACVarianceUniform(keras.initializers.RandomUniform):
    """U[−r, r] for Ŵ and M̂ with r from `nac_uniform_limit(fan_in, fan_out)`:
    the effective NAC weight tanh(Ŵ) ⊙ σ(M̂) starts with variance
    `gain` / max(fan_in + fan_out, `min_fan`) (Madsen & Johansen's reference
    code: gain 2, min_fan 5).

    Args:
        min_fan: positive float, the smallest fan_in + fan_out used (default 5).
        gain: positive float, the variance times the fan (default 2).
        seed: None or int, as in `keras.initializers.RandomUniform`
            (None: drawn from Keras' global seed, so
            `keras.utils.set_random_seed` makes it reproducible).

    Example:

    >>> init = NACVarianceUniform()
    >>> init.limit((100, 2))          # ≈ 0.504
    >>> layer = NAC(2, w_hat_initializer=init, m_hat_initializer=NACVarianceUniform())
    """

    def __init__(self, min_fan=5.0, gain=2.0, seed=None):
        self.min_fan = check_positive("min_fan", min_fan)
        self.gain = check_positive("gain", gain)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(
                f"Received an invalid value for argument `seed`, expected None or an int, "
                f"got {seed!r}."
            )
        super().__init__(minval=-1.0, maxval=1.0, seed=seed)
        self._seed_argument = seed

    def limit(self, shape):
        """The limit r for a weight of `shape` (input_dim, units)."""
        fan_in, fan_out = _fans(shape)
        return nac_uniform_limit(fan_in, fan_out, self.min_fan, self.gain)

    def __call__(self, shape, dtype=None):
        r = self.limit(shape)
        return keras.random.uniform(shape, minval=-r, maxval=r, seed=self.seed, dtype=dtype)

    def get_config(self):
        return {"min_fan": self.min_fan, "gain": self.gain, "seed": self._seed_argument}
