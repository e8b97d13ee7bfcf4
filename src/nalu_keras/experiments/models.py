"""Small Keras models used by the experiments, built by name."""

from __future__ import annotations

import keras

from nalu_keras.layers import NAC, NALU

STATIC_MODELS = ("NAC", "NALU", "ReLU6", "Linear")


def static_model(name, input_size, hidden=2, name_prefix=None):
    """A two-layer model `input_size -> hidden -> 1` of the given kind.

    `"NAC"` and `"NALU"` stack two units of that kind (the NALU paper's
    static models); `"ReLU6"` is an MLP with a ReLU6 hidden layer and a linear
    output; `"Linear"` is two Dense layers without activation (the paper's
    "None"). The Dense layers have biases, as in a standard MLP.
    """
    if name not in STATIC_MODELS:
        raise ValueError(
            f"Unknown model {name!r}; expected one of {', '.join(STATIC_MODELS)}."
        )
    inputs = keras.Input((input_size,))
    if name == "NAC":
        outputs = NAC(1)(NAC(hidden)(inputs))
    elif name == "NALU":
        outputs = NALU(1)(NALU(hidden)(inputs))
    elif name == "ReLU6":
        outputs = keras.layers.Dense(1)(keras.layers.Dense(hidden, activation="relu6")(inputs))
    else:
        outputs = keras.layers.Dense(1)(keras.layers.Dense(hidden)(inputs))
    return keras.Model(inputs, outputs, name=name_prefix or name)
