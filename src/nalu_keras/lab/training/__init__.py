"""Training: one seed at a time with `model.fit`, or every seed at once.

* `train_single` (`nalu_keras.lab.training.single`): the reference path, one
  `model.fit` per seed; runs on every backend.
* `train_vectorized` (`nalu_keras.lab.training.vectorized`): the fast path on the
  JAX backend; every seed of one configuration in one compiled program
  (parameters stacked along a seed axis, `jax.vmap` over seeds, `lax.scan`
  over steps, a fresh batch per step drawn inside the program).

Both draw the same per-seed training batches (`draw_batches`), start from the
same initialization (`keras.utils.set_random_seed(seed)` then the builder),
use the same Adam and return the same `TrainResult` rows.
"""

from nalu_keras.lab.training.single import train_single
from nalu_keras.lab.training.vectorized import (
    Adam,
    TrainResult,
    adam_update,
    draw_batches,
    evaluation_sets,
    linear_warmup,
    log_steps,
    make_batch_fn,
    resolve_strength_keys,
    seed_key,
    seed_tasks,
    train_vectorized,
)

__all__ = [
    "Adam",
    "TrainResult",
    "adam_update",
    "draw_batches",
    "evaluation_sets",
    "linear_warmup",
    "log_steps",
    "make_batch_fn",
    "resolve_strength_keys",
    "seed_key",
    "seed_tasks",
    "train_single",
    "train_vectorized",
]
