"""Metrics of a trained unit that need only the library (keras, numpy).

`sparsity_error`: how far the learned arithmetic weights are from the exact
{−1, 0, 1} solution (Madsen & Johansen 2020).
"""

from __future__ import annotations

import numpy as np

from nalu_keras.layers.base import ArithmeticUnit


def sparsity_error(model_or_layer):
    """The largest distance of any arithmetic weight from {−1, 0, 1}.

        E = max over units u, over entries w of u's weights of min(|w|, |1 − |w||)

    (Madsen & Johansen 2020). E = 0 means every weight is exactly −1, 0 or 1
    (or 0 or 1), so the learned function can be read off exactly. E ≤ 0.5
    always for weights in [−1, 1].

    What counts as a weight: each unit's `arithmetic_weights()`, i.e. its
    `effective_weights()` (the matrices the unit applies, e.g. tanh(Ŵ) ⊙ σ(M̂)
    for a NAC, W for an NAU/NMU, W_re and W_im for an NPU) without the gates
    (entries named "gate..."). Raw parameters (Ŵ, M̂) are not used.

    Args:
        model_or_layer: a Keras model, an arithmetic unit, any layer that
            contains units (e.g. an RNN of `ArithmeticCell`s), or a list of
            layers. Every built arithmetic unit in it is measured.

    Returns:
        float.

    Raises:
        ValueError: if it contains no built arithmetic unit with weights.
    """
    errors = []
    for unit in ArithmeticUnit.instances_in(model_or_layer):
        if not unit.built:
            continue
        for value in unit.arithmetic_weights().values():
            value = np.abs(np.asarray(value, dtype=np.float64))
            if value.size:
                errors.append(float(np.max(np.minimum(value, np.abs(1.0 - value)))))
    if not errors:
        raise ValueError(
            f"No built arithmetic unit with weights found in {model_or_layer!r}."
        )
    return max(errors)
