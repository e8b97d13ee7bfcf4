"""Weight constraints for the arithmetic units.

A Keras constraint is applied by the optimizer right after each update
(`variable.assign(constraint(variable))`), so clipping there is the projected
gradient method that Madsen & Johansen (2020) use to keep the NAU weights in
[-1, 1] and the NMU weights in [0, 1].
"""

from __future__ import annotations

import keras

from nalu_keras.validation import check_finite


@keras.saving.register_keras_serializable(package="nalu_keras")
class Clip(keras.constraints.Constraint):
    """Clips every entry of a weight to `[min_value, max_value]`.

    Used as a weight's constraint, it projects the weight back into the
    interval after every optimizer step (projected gradient descent):

        W <- clip(W, min_value, max_value)

    Args:
        min_value: finite float, the lower bound.
        max_value: finite float, the upper bound, > `min_value`.

    Example:

    >>> layer = keras.layers.Dense(2, kernel_constraint=Clip(-1.0, 1.0))
    >>> Clip(0.0, 1.0)(np.array([-0.5, 0.3, 1.7]))  # [0.0, 0.3, 1.0]
    """

    def __init__(self, min_value=-1.0, max_value=1.0):
        self.min_value = check_finite("min_value", min_value)
        self.max_value = check_finite("max_value", max_value)
        if not self.min_value < self.max_value:
            raise ValueError(
                f"`min_value` must be smaller than `max_value`; got "
                f"min_value={min_value!r}, max_value={max_value!r}."
            )

    def __call__(self, w):
        w = keras.ops.convert_to_tensor(w)
        return keras.ops.clip(w, self.min_value, self.max_value)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value}
