"""Train several independent models of one kind at once, in one Keras model.

The members share the input and sit side by side; their outputs are
concatenated to `(batch, members)` and the loss is the *sum* of the members'
mean squared errors. The gradient of a sum with respect to one member's
weights is the gradient of that member's own loss, and Adam updates every
weight from its own gradient history, so each member trains exactly as it
would alone on the same batches (a member that diverges to NaN does not
disturb the others). The members differ in their random initialization; they
see the same training batches. This is plain Keras, so it runs on every
backend, and on JAX it turns M small compiled steps into one.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def members_loss(y_true, y_pred):
    """Per-sample sum over members of the squared error (mean over batch = Σ MSE)."""
    return keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1)


def parallel_model(build_member, members, input_shape, name="members"):
    """A model whose output column i is member i's scalar prediction.

    Args:
        build_member: function (input tensor, member index) -> output tensor of
            shape (batch, 1); called once per member, creating fresh layers.
        members: number of members.
        input_shape: shape of one example, without the batch axis.
    """
    inputs = keras.Input(tuple(input_shape))
    outputs = [build_member(inputs, i) for i in range(members)]
    merged = outputs[0] if members == 1 else keras.layers.Concatenate(axis=-1)(outputs)
    return keras.Model(inputs, merged, name=name)


def train(model, x, t, steps, batch_size=128, learning_rate=1e-2, seed=0,
          steps_per_execution=100):
    """Fit the members for `steps` optimizer steps on the pool (x, t).

    `t` has shape (n, 1) and is broadcast to every member. Batches are drawn
    by shuffling the pool each epoch (Keras' own shuffling, seeded through
    `keras.utils.set_random_seed(seed)` before the call). Returns the list
    of per-epoch losses (the sum over members).
    """
    members = model.output_shape[-1]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=members_loss,
        steps_per_execution=max(1, min(steps_per_execution, steps)),
    )
    batches_per_epoch = len(x) // batch_size
    if batches_per_epoch < 1:
        raise ValueError(f"the training pool ({len(x)}) is smaller than one batch ({batch_size})")
    epochs = math.ceil(steps / batches_per_epoch)
    targets = np.broadcast_to(t, (len(t), members))
    history = model.fit(
        x,
        targets,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=min(batches_per_epoch, steps),
        shuffle=True,
        verbose=0,
    )
    return history.history["loss"]


def member_predictions(model, x, batch_size=1024):
    """Predictions of every member, float64, shape (n, members)."""
    y = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(y, dtype=np.float64).reshape(len(x), -1)


def member_mse(model, x, t, batch_size=1024):
    """Mean squared error of each member on (x, t): an array of length M.

    Non-finite predictions give an inf (overflow) or NaN error; they are kept,
    not dropped.
    """
    y = member_predictions(model, x, batch_size)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.mean((y - np.asarray(t, dtype=np.float64).reshape(-1, 1)) ** 2, axis=0)
