"""Train every seed of one configuration at once, in one compiled JAX program.

The Madsen & Johansen (2020) protocol trains 100 seeds of a 100 → 2 → 1 model
for millions of steps with a fresh batch every step. Run one seed at a time
with `model.fit`, the time goes to per-step overhead on tiny tensors. Here the
model is built once per seed only to initialize it; training is a pure JAX
function of the parameters, stacked along a leading *seed* axis:

    one step, for one seed (then `jax.vmap` over seeds, `lax.scan` over steps):
        non_trainable <- strengths(t)            (regularizer schedule, in-program)
        x, t_ = batch(key_seed, t)               (fresh batch, drawn in-program)
        loss, grads = value_and_grad(mse(model.stateless_call(...)) + Σ losses)
        params, m, v <- Adam(params, grads, m, v, t)
        params <- constraint(params)             (e.g. the NAU/NMU `Clip`)

* Model: `model.stateless_call(trainable, non_trainable, x, return_losses=True)`
  gives the outputs, the updated non-trainable values and every loss of the
  forward pass: the weights' regularization losses (computed from the values
  passed in, including the regularizers' strength variables, which the units
  track as non-trainable weights) and `add_loss` losses (the input
  regularizer R_z). The loss is `mean((y − t)²) + Σ losses`, exactly what
  `model.fit(loss="mse")` minimizes.
* Optimizer: Adam written here as a small pure function (`adam_update`),
  formula for formula the update of `keras.optimizers.Adam` (ε added to
  √v, bias correction folded into the step size, ε = 1e-7 by default; note
  that PyTorch's Adam, used by Madsen & Johansen, adds its ε = 1e-8 to the
  bias-corrected √v̂ instead). It is used rather than the Keras optimizer's
  `stateless_apply` because it is trivially vmappable (one shared step
  counter, per-seed moments) and has no Python-side state.
* Constraints: after every update each trainable variable's `.constraint`
  (if any) is applied to its new value inside the compiled step, as the Keras
  optimizer does after `apply`.
* Schedules: `strengths(step) -> {key: value}` is evaluated inside the
  program with the traced step index (the number of optimizer steps done
  before the batch) and overwrites those non-trainable values before the
  step. Keys name non-trainable variables: an int (index into
  `model.non_trainable_variables`), a variable's name (e.g.
  "sparsity_strength": every such variable), "<layer name>/<variable name>"
  (name your layers to use this) or a variable path. See `linear_warmup`.
* Data: see `make_batch_fn`. Each seed has its own stream, a pure function
  of (seed, step): reproducible, independent of the other seeds in the run,
  of how the run is split into calls and of `jax_threefry_partitionable`
  (with the default `rng="hash"`).
* Logging: every `log_every` steps (and at the last step) the interpolation
  and extrapolation MSE on fixed validation and test sets (numpy, from
  `ArithmeticTask.sample` with fixed seeds), evaluated in chunks; the training
  loss logged for step t is the loss of batch t at the weights after t steps
  (the loss whose gradient gives step t + 1), as in Madsen & Johansen's code.

`nalu_keras.lab.training.single` is the per-seed `model.fit` reference for the
same streams, runnable on every backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers

import numpy as np

from nalu_keras.lab.tasks.arithmetic import SUBSET_MODES, ArithmeticTask, ValueRange
from nalu_keras.validation import check_log_points, check_number, check_steps

# Domain separation: the training-data key of a seed is fold_in(key(seed), tag),
# so it is unrelated to any other use of `jax.random.key(seed)`.
DATA_STREAM_TAG = 0xDA7A
RNG_KINDS = ("hash", "threefry")

# lowbias32 of C. Wellons' hash prospector (a bijection of uint32 with low bias)
_MIX_1 = 0x7FEB352D
_MIX_2 = 0x846CA68B
_GOLDEN = 0x9E3779B9


def _jax():
    import jax

    return jax


def _check_backend():
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            "The vectorized trainer needs the JAX backend (KERAS_BACKEND=jax); "
            f"the current backend is {keras.backend.backend()!r}. Use "
            "nalu_keras.lab.training.single.train_single on other backends."
        )


def _check_int(name, value, minimum):
    return check_number(name, value, minimum=minimum, integer=True)


def _check_seeds(seeds):
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    seeds = list(seeds)
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed.")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
            raise ValueError(f"Every seed must be an integer in [0, 2**32), got {seed!r}.")
    if len(set(int(s) for s in seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct, got {seeds!r}.")
    return tuple(int(s) for s in seeds)


def _check_float(name, value, minimum=None, strict=False):
    return check_number(name, value, minimum=minimum, strict=strict)


# ---------------------------------------------------------------------------
# Data streams


def seed_key(seed):
    """The raw threefry key (2 × uint32, numpy) of a seed's training stream."""
    jax = _jax()
    key = jax.random.fold_in(jax.random.key(int(seed), impl="threefry2x32"), DATA_STREAM_TAG)
    return np.asarray(jax.random.key_data(key), dtype=np.uint32)


def _step_key(key_data, step):
    jax = _jax()
    key = jax.random.wrap_key_data(key_data, impl="threefry2x32")
    return jax.random.fold_in(key, step)


def _mix32(x):
    jnp = _jax().numpy
    x = x ^ (x >> 16)
    x = x * jnp.uint32(_MIX_1)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(_MIX_2)
    return x ^ (x >> 16)


def _hash_uniform(key_data, step, shape):
    """U[0, 1) float32 from a keyed counter hash (see `make_batch_fn`)."""
    jax = _jax()
    jnp = jax.numpy
    k = jax.random.key_data(_step_key(key_data, step))
    size = math.prod(shape)
    counter = jax.lax.iota(jnp.uint32, size).reshape(shape)
    bits = _mix32(_mix32(counter * jnp.uint32(_GOLDEN) ^ k[0]) + k[1])
    mantissa = (bits >> 9) | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)


def _threefry_uniform(key_data, step, shape):
    jax = _jax()
    return jax.random.uniform(_step_key(key_data, step), shape, jax.numpy.float32)


def _map_to_range(u, value_range):
    """Map U[0, 1) onto a value range (a union: each part with probability 1/k).

    One uniform per element: part j = floor(k·u) and, inside it, the
    fraction k·u − j (the piecewise-linear inverse of the range's CDF).
    """
    jnp = _jax().numpy
    parts = value_range.parts
    if len(parts) == 1:
        lo, hi = parts[0]
        return jnp.float32(lo) + u * jnp.float32(hi - lo)
    k = len(parts)
    scaled = u * jnp.float32(k)
    index = jnp.minimum(jnp.floor(scaled), k - 1)
    fraction = scaled - index
    index = index.astype(jnp.int32)
    lows = jnp.asarray([lo for lo, _ in parts], jnp.float32)
    widths = jnp.asarray([hi - lo for lo, hi in parts], jnp.float32)
    return lows[index] + fraction * widths[index]


def _target(task, x, offset=None):
    """op(a, b) of `task` in jax. a and b are summed over the task's own
    subsets, or, given a (traced) `offset` k, over the subsets of the same
    sizes starting at k (the subsets of `task.with_seed(s)` for the seed s
    whose offset k is)."""
    jax = _jax()
    jnp = jax.numpy
    if offset is None:
        a_slice, b_slice = task.subsets
        a = jnp.sum(x[..., a_slice], axis=-1)
        b = jnp.sum(x[..., b_slice], axis=-1)
    else:
        size, second = task.subset_size, task.subset_size - task.overlap_size
        window = jax.lax.dynamic_slice_in_dim
        a = jnp.sum(window(x, offset, size, axis=-1), axis=-1)
        b = jnp.sum(window(x, offset + second, size, axis=-1), axis=-1)
    ops = {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / b,
        "squared": lambda: a * a,
        "root": lambda: jnp.sqrt(a),
    }
    return ops[task.op]()[..., None]


def make_batch_fn(task, value_range, batch_size=128, rng="hash", subsets="shared"):
    """A pure function `(key_data, step, offset=None) -> (x, t)`: the batch
    of one step.

    `key_data` is a seed's `seed_key(seed)`; `step` an int32 scalar (traced
    or not). `subsets` "shared" (default): t uses `task`'s subsets and
    `offset` is ignored; "per-seed": t sums the subsets starting at the
    int32 `offset` (that of `task.with_seed(seed).offset`), so one compiled
    function serves seeds whose subsets differ. x has shape (batch_size, input_size), t = op(a, b) shape
    (batch_size, 1), both float32 (a and b are summed in float32, unlike
    `ArithmeticTask.sample`, which sums in float64).

    The step's key is fold_in(seed key, step) (threefry, one block per seed
    and step). The batch's uniforms come from that key in one of two ways:

    * `"hash"` (default): a counter-based generator. Element c of the batch
      gets bits = mix(mix(c · φ ⊕ k0) + k1), where mix is the lowbias32
      integer hash (a bijection of uint32) and (k0, k1) the step key;
      uint32 arithmetic only. Measured on our 2-core machine (loaded), 100
      seeds × 128 × 100 values a step: generation alone ≈ 130,000
      seed-steps/s against ≈ 10,000 for threefry; the whole NMU training
      step ≈ 34,000–43,000 seed-steps/s against ≈ 6,000–8,600 with
      threefry, and ≈ 57,000 with one fixed batch (no generation at all);
      see benchmarks/throughput.py. Not
      cryptographic; statistically it behaves as independent uniforms for
      this purpose (see the tests). It does not depend on the
      `jax_threefry_partitionable` flag.
    * `"threefry"`: `jax.random.uniform(step key)`. Its stream changes
      with `jax_threefry_partitionable`.

    Each float is the 23-bit mantissa form of U[0, 1), mapped onto the value
    range (unions included: one part with probability 1/k each).
    """
    task = _check_task(task)
    value_range = ValueRange.parse(value_range)
    batch_size = _check_int("batch_size", batch_size, 1)
    if rng not in RNG_KINDS:
        raise ValueError(f"Received an invalid value for argument `rng`, expected one of {RNG_KINDS}, got {rng!r}.")
    shape = (batch_size, task.input_size)
    if math.prod(shape) >= 2**32:
        raise ValueError(f"A batch of shape {shape} has too many elements for the counter of rng='hash'.")
    uniform = _hash_uniform if rng == "hash" else _threefry_uniform
    per_seed = _check_subsets(subsets) == "per-seed"

    def batch(key_data, step, offset=None):
        x = _map_to_range(uniform(key_data, step, shape), value_range)
        if per_seed and offset is None:
            raise ValueError('subsets="per-seed" needs the offset of the seed\'s subsets.')
        return x, _target(task, x, offset if per_seed else None)

    return batch


def draw_batches(task, value_range, seed, start, count, batch_size=128, rng="hash", subsets="shared"):
    """The batches of steps start, …, start + count − 1 of one seed's stream.

    Returns numpy arrays x (count, batch_size, input_size) and
    t (count, batch_size, 1): exactly the batches `train_vectorized` draws
    inside its compiled program (the per-seed reference path feeds them to
    `model.fit`). With `subsets="per-seed"` the targets are those of
    `task.with_seed(seed)`, summed as the program sums them.
    """
    jax = _jax()
    start = _check_int("start", start, 0)
    count = _check_int("count", count, 0)
    task = _check_task(task)
    fn = _batches_fn(task, ValueRange.parse(value_range), int(batch_size), rng, _check_subsets(subsets))
    offset = task.with_seed(seed).offset if subsets == "per-seed" else 0
    x, t = fn(seed_key(seed), jax.numpy.arange(start, start + count, dtype=jax.numpy.int32),
              jax.numpy.int32(offset))
    return np.asarray(x), np.asarray(t)


@functools.lru_cache(maxsize=32)
def _batches_fn(task, value_range, batch_size, rng, subsets):
    jax = _jax()
    batch = make_batch_fn(task, value_range, batch_size, rng, subsets)
    return jax.jit(jax.vmap(batch, in_axes=(None, 0, None)))


def _check_task(task):
    if not isinstance(task, ArithmeticTask):
        raise ValueError(f"`task` must be an ArithmeticTask, got {type(task).__name__}.")
    return task


def _check_subsets(subsets):
    if subsets not in SUBSET_MODES:
        raise ValueError(f"Received an invalid value for argument `subsets`, expected one of {SUBSET_MODES}, "
                         f"got {subsets!r}.")
    return subsets


def seed_tasks(task, seeds, subsets="shared"):
    """The task each seed trains on: `task` itself for every seed
    ("shared"), or `task.with_seed(seed)` ("per-seed": the data seed is the
    run seed, so the subsets' offset differs from seed to seed, as in
    Madsen & Johansen's code)."""
    task = _check_task(task)
    if _check_subsets(subsets) == "shared":
        return [task for _ in seeds]
    return [task.with_seed(int(seed)) for seed in seeds]


# ---------------------------------------------------------------------------
# Schedules of regularizer strengths


def linear_warmup(keys, strength, start_step, end_step):
    """Madsen & Johansen's warm-up as a `strengths` function:

        λ(t) = λ̂ · clip((t − t_start) / (t_end − t_start), 0, 1)

    in float32, for every key in `keys` (a key or a list; see the module
    docstring). The same formula as `callbacks.LinearWarmupSchedule`, as a pure
    function of the step, usable inside the compiled program.

    Example:

    >>> strengths = linear_warmup("sparsity_strength", 10.0, 1_000_000, 2_000_000)
    >>> strengths(1_500_000)   # {"sparsity_strength": 5.0}
    """
    if isinstance(keys, (str, numbers.Integral)):
        keys = [keys]
    keys = list(keys)
    strength = _check_float("strength", strength, 0.0)
    start_step = _check_int("start_step", start_step, 0)
    end_step = _check_int("end_step", end_step, 0)
    if end_step <= start_step:
        raise ValueError(f"`end_step` must be greater than `start_step`; got {start_step!r}, {end_step!r}.")

    return LinearWarmup(tuple(keys), strength, start_step, end_step)


@dataclasses.dataclass(frozen=True)
class LinearWarmup:
    """The `strengths` function `linear_warmup` returns (a picklable object,
    so that `train_vectorized(..., workers=2)` can send it to its processes)."""

    keys: tuple
    strength: float
    start_step: int
    end_step: int

    def __call__(self, step):
        jnp = _jax().numpy
        step = jnp.asarray(step, jnp.int32)
        fraction = (step - self.start_step).astype(jnp.float32) / jnp.float32(self.end_step - self.start_step)
        value = jnp.float32(self.strength) * jnp.clip(fraction, 0.0, 1.0)
        return {key: value for key in self.keys}


def _variable_names(model):
    """id(non-trainable variable) -> the set of names a `strengths` key may use."""
    names = {}
    for variable in model.non_trainable_variables:
        names[id(variable)] = {variable.name, variable.path}
    layers = [model]
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        layers = list(flatten(include_self=True, recursive=True))
    for layer in layers:
        for variable in layer.non_trainable_weights:
            if id(variable) in names:
                names[id(variable)].add(f"{layer.name}/{variable.name}")
    return names


def resolve_strength_keys(model, keys):
    """{key: [indices into model.non_trainable_variables]} for `strengths` keys.

    Raises:
        ValueError: for a key that names no non-trainable variable.
    """
    variables = model.non_trainable_variables
    names = _variable_names(model)
    resolved = {}
    for key in keys:
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            if not 0 <= key < len(variables):
                raise ValueError(f"Strength key {key!r} is not an index of the model's "
                                 f"{len(variables)} non-trainable variables.")
            resolved[key] = [int(key)]
            continue
        indices = [i for i, v in enumerate(variables) if isinstance(key, str) and key in names[id(v)]]
        if not indices:
            known = sorted({n for group in names.values() for n in group})
            raise ValueError(f"Strength key {key!r} names no non-trainable variable of the model; "
                             f"known names: {known}.")
        resolved[key] = indices
    return resolved


def strength_values(strengths, step, model):
    """{index into model.non_trainable_variables: value} of `strengths(step)`."""
    if strengths is None:
        return {}
    values = strengths(step)
    resolved = resolve_strength_keys(model, list(values))
    out = {}
    for key, value in values.items():
        for index in resolved[key]:
            out[index] = value
    return out


# ---------------------------------------------------------------------------
# Adam, as keras.optimizers.Adam computes it


ADAM_FORMS = ("keras", "pytorch")


@dataclasses.dataclass(frozen=True)
class Adam:
    """Hyper-parameters of Adam and where ε enters (see `adam_update`):
    `form` "keras" (Keras' and TensorFlow's Adam, default) or "pytorch"
    (`torch.optim.Adam`, as in Madsen & Johansen's reference code)."""

    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    form: str = "keras"

    def __post_init__(self):
        if self.form not in ADAM_FORMS:
            raise ValueError(f"`form` must be one of {ADAM_FORMS}, got {self.form!r}.")
        _check_float("learning_rate", self.learning_rate, 0.0, strict=True)
        for name in ("beta_1", "beta_2"):
            value = _check_float(name, getattr(self, name), 0.0)
            if value >= 1:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
        _check_float("epsilon", self.epsilon, 0.0)

    def keras_optimizer(self):
        """The equivalent `keras.optimizers.Adam` (form "keras" only)."""
        import keras

        if self.form != "keras":
            raise ValueError(
                f"Keras' Adam has the Keras form only; form {self.form!r} is available in "
                "train_vectorized, not in the model.fit path."
            )

        return keras.optimizers.Adam(
            learning_rate=self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon
        )


def adam_update(adam, params, grads, m, v, step):
    """One Adam step on lists of arrays; `step` = steps done before (0-based).

    With t = step + 1, m ← m + (g − m)(1 − β₁), v ← v + (g² − v)(1 − β₂), and

        form "keras":    p ← p − lr · √(1 − β₂^t) / (1 − β₁^t) · m / (√v + ε)
        form "pytorch":  p ← p − lr · m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁^t),
                         v̂ = v / (1 − β₂^t)

    in the dtype of each parameter: the first as
    `keras.optimizers.Adam.update_step`, the second as `torch.optim.Adam`
    (ε added after the bias correction; the two differ only while
    √(1 − β₂^t) is far from 1, i.e. the first few thousand steps, and by
    their default ε, 1e-7 and 1e-8). Returns (params, m, v).
    """
    jnp = _jax().numpy
    new_p, new_m, new_v = [], [], []
    for p, g, m_i, v_i in zip(params, grads, m, v):
        dtype = p.dtype
        local_step = (step + 1).astype(dtype)
        beta_1_power = jnp.power(jnp.asarray(adam.beta_1, dtype), local_step)
        beta_2_power = jnp.power(jnp.asarray(adam.beta_2, dtype), local_step)
        lr = jnp.asarray(adam.learning_rate, dtype)
        g = g.astype(dtype)
        m_i = m_i + (g - m_i) * (1 - adam.beta_1)
        v_i = v_i + (jnp.square(g) - v_i) * (1 - adam.beta_2)
        if adam.form == "pytorch":
            denominator = jnp.sqrt(v_i) / jnp.sqrt(1 - beta_2_power) + adam.epsilon
            new_p.append(p - (lr / (1 - beta_1_power)) * m_i / denominator)
        else:
            alpha = lr * jnp.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            new_p.append(p - (m_i * alpha) / (jnp.sqrt(v_i) + adam.epsilon))
        new_m.append(m_i)
        new_v.append(v_i)
    return new_p, new_m, new_v


# ---------------------------------------------------------------------------
# Initialization


def build_seeded(build_model, seed):
    """`keras.utils.set_random_seed(seed)`, then `build_model()`, built."""
    import keras

    keras.utils.set_random_seed(int(seed))
    model = build_model()
    if not getattr(model, "built", False) or not model.trainable_variables:
        raise ValueError(
            "`build_model()` must return a built Keras model with trainable "
            "variables (e.g. a Sequential that starts with keras.Input)."
        )
    return model


def _values(variables):
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]


def initial_values(build_model, seeds):
    """Per-seed initial values, stacked along a leading seed axis.

    Returns (reference model, trainable list, non-trainable list): the model
    built for the first seed (its structure is used for every seed), and one
    array (len(seeds), *shape) per variable, in the order of
    `model.trainable_variables` / `model.non_trainable_variables`.
    """
    reference = None
    trainable, non_trainable = [], []
    for seed in seeds:
        model = build_seeded(build_model, seed)
        if reference is None:
            reference = model
        elif [tuple(v.shape) for v in model.variables] != [tuple(v.shape) for v in reference.variables]:
            raise ValueError("`build_model()` must build the same structure for every seed.")
        trainable.append(_values(model.trainable_variables))
        non_trainable.append(_values(model.non_trainable_variables))
    stack = lambda rows: [np.stack(column) for column in zip(*rows)] if rows and rows[0] else []  # noqa: E731
    return reference, stack(trainable), stack(non_trainable)


# ---------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class TrainResult:
    """What a trainer returns.

    Attributes:
        rows: tidy log rows, one per (seed, logged step), sorted by seed then
            step: {"seed", "step", "train_loss", "interp_mse", "extrap_mse"}.
        seeds: the seeds, in the order of the leading axis below.
        trainable: final values, one array (len(seeds), *shape) per
            variable of `model.trainable_variables`.
        non_trainable: likewise for `model.non_trainable_variables` (with
            the scheduled strengths of step `steps`, the values a next step
            would use).
        trainable_paths: the paths of those variables (of the first seed's
            model; informational).
        selected_trainable, selected_non_trainable: the values at each
            seed's *selected* step (the protocol's model selection: the
            logged step with the lowest validation MSE, NaN counting as
            +inf, ties to the earliest step; see `evaluation.select_best`),
            stacked like `trainable`.
        selected_steps: that step for each seed, in seed order.
    """

    rows: list
    seeds: tuple
    trainable: list
    non_trainable: list
    trainable_paths: list
    selected_trainable: list = dataclasses.field(default_factory=list)
    selected_non_trainable: list = dataclasses.field(default_factory=list)
    selected_steps: tuple = ()

    def index(self, seed):
        try:
            return self.seeds.index(int(seed))
        except ValueError:
            raise ValueError(f"Seed {seed!r} was not trained; seeds: {self.seeds}.") from None

    def _values_of(self, which):
        if which == "final":
            return self.trainable, self.non_trainable
        if which == "selected":
            if len(self.selected_steps) != len(self.seeds):
                raise ValueError("This result holds no values of the selected steps.")
            return self.selected_trainable, self.selected_non_trainable
        raise ValueError(f"which must be 'final' or 'selected', got {which!r}.")

    def weights(self, seed, which="final"):
        """The trainable values of `seed`, a list in variable order: of the
        last step (`which="final"`) or of the selected step ("selected")."""
        i = self.index(seed)
        return [w[i] for w in self._values_of(which)[0]]

    def assign_to(self, model, seed, which="final"):
        """Write the values of `seed` (final or at the selected step, see
        `weights`) into `model` (built by the same builder), e.g. to measure
        `nalu_keras.sparsity_error(model)`."""
        i = self.index(seed)
        trainable, non_trainable = self._values_of(which)
        for variable, value in zip(model.trainable_variables, trainable):
            variable.assign(value[i])
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value[i])
        return model

    def curve(self, seed, column):
        """(steps, values) of one column of `rows` for one seed, as arrays."""
        rows = [r for r in self.rows if r["seed"] == int(seed)]
        return np.array([r["step"] for r in rows]), np.array([r[column] for r in rows])


class SelectionTracker:
    """Keeps, per seed, the values at the logged step with the lowest
    validation MSE (NaN counts as +inf; ties keep the earliest step), the
    rule of `evaluation.select_best`."""

    def __init__(self, count):
        self.best = np.full(count, np.inf)
        self.steps = [None] * count
        self.trainable = None
        self.non_trainable = None

    def update(self, step, interp, values):
        """`interp`: validation MSE per seed at `step`; `values()`: returns
        (trainable, non_trainable) lists of arrays with a leading seed axis
        (called only when some seed improves)."""
        interp = np.where(np.isnan(interp), np.inf, np.asarray(interp, dtype=np.float64))
        better = interp < self.best
        if self.steps[0] is None:
            better[:] = True  # the first logged step is selected until beaten
        if not better.any():
            return
        trainable, non_trainable = values()
        if self.trainable is None:
            self.trainable = [np.array(v, copy=True) for v in trainable]
            self.non_trainable = [np.array(v, copy=True) for v in non_trainable]
        else:
            for kept, new in zip(self.trainable + self.non_trainable, list(trainable) + list(non_trainable)):
                kept[better] = np.asarray(new)[better]
        self.best = np.where(better, interp, self.best)
        self.steps = [step if b else s for b, s in zip(better, self.steps)]


def log_steps(steps, log_every):
    """The logged steps: 0, log_every, 2·log_every, …, and `steps` itself."""
    logged = list(range(0, steps + 1, log_every))
    if logged[-1] != steps:
        logged.append(steps)
    return logged


def _prepare_run(task, seeds, steps, log_every, eval_chunk, learning_rate, beta_1, beta_2,
                 epsilon, interpolation_range, extrapolation_range, validation_size, test_size,
                 validation_seed, test_seed, adam_form="keras", subsets="shared"):
    """The argument checks and set-up both trainers share.

    Returns (task, seeds, steps, log_every, eval_chunk, adam, validation,
    test, logged steps); with `subsets="per-seed"` the targets of
    validation and test have a leading seed axis.
    """
    task = _check_task(task)
    seeds = _check_seeds(seeds)
    _check_subsets(subsets)
    steps = check_steps("steps", steps, minimum=0)
    log_every = _check_int("log_every", log_every, 1)
    check_log_points(steps, log_every, len(seeds))
    eval_chunk = _check_int("eval_chunk", eval_chunk, 1)
    adam = Adam(learning_rate, beta_1, beta_2, epsilon, adam_form)
    validation, test = evaluation_sets(
        task, interpolation_range, extrapolation_range, validation_size, test_size, validation_seed, test_seed,
        tasks=None if subsets == "shared" else seed_tasks(task, seeds, subsets),
    )
    return task, seeds, steps, log_every, eval_chunk, adam, validation, test, log_steps(steps, log_every)


def evaluation_sets(task, interpolation_range, extrapolation_range, validation_size, test_size,
                    validation_seed=None, test_seed=None, tasks=None):
    """The fixed validation (interpolation) and test (extrapolation) sets.

    Drawn with numpy by `task.sample`; default seeds [task.seed, 1] and
    [task.seed, 2]. Returns ((x_val, t_val), (x_test, t_test)), float32.

    `tasks`: None, or one task per seed (see `seed_tasks`). The inputs are
    then the same for every seed (those of `task`) and each seed's targets
    are its own task's, computed from the float64 inputs: t_val and t_test
    have shape (seeds, size, 1).
    """
    validation_seed = [task.seed, 1] if validation_seed is None else validation_seed
    test_seed = [task.seed, 2] if test_seed is None else test_seed
    sizes = (_check_int("validation_size", validation_size, 1), _check_int("test_size", test_size, 1))
    sets = []
    for size, value_range, seed in zip(sizes, (interpolation_range, extrapolation_range),
                                       (validation_seed, test_seed)):
        if tasks is None:
            sets.append(task.sample(size, value_range, seed=seed))
            continue
        x = task.sample_inputs(size, value_range, seed)
        for own in tasks:
            if _check_task(own).input_size != task.input_size:
                raise ValueError(f"every task in `tasks` needs input_size {task.input_size}, got {own.input_size}.")
        t = np.stack([own.target(x) for own in tasks]).astype(np.float32)
        sets.append((x.astype(np.float32), t))
    return tuple(sets)


# ---------------------------------------------------------------------------
# The compiled program


class _Program:
    """The jitted functions for one model structure, task and settings."""

    def __init__(self, model, batch_fn, adam, strengths, eval_chunk, per_seed_targets=False):
        jax = _jax()
        self.jax = jax
        self.model = model
        self.batch_fn = batch_fn
        self.adam = adam
        self.strengths = strengths
        self.eval_chunk = eval_chunk
        self.constraints = [v.constraint for v in model.trainable_variables]
        self.nt_specs = [(tuple(v.shape), v.dtype) for v in model.non_trainable_variables]
        self._runs = {}
        self._finalize = None
        self.training_kwargs = {}
        if getattr(model, "_call_has_training_arg", True):
            self.training_kwargs = {"training": True}
        # evaluation inputs are shared; targets too, unless every seed has its own subsets
        target_axis = 0 if per_seed_targets else None
        self._eval = jax.jit(jax.vmap(self._eval_seed, in_axes=(0, 0, None, target_axis, None)))
        self._final_loss = jax.jit(
            jax.vmap(self._final_loss_seed, in_axes=(0, 0, 0, 0, None))
        )
        if strengths is not None:
            # resolve once now, so a bad key fails before compiling
            strength_values(strengths, 0, model)

    # -- pieces -------------------------------------------------------------
    def _set_strengths(self, non_trainable, step):
        jnp = self.jax.numpy
        if self.strengths is None:
            return non_trainable
        non_trainable = list(non_trainable)
        for index, value in strength_values(self.strengths, step, self.model).items():
            shape, dtype = self.nt_specs[index]
            non_trainable[index] = jnp.broadcast_to(jnp.asarray(value, dtype), shape)
        return non_trainable

    def _loss(self, trainable, non_trainable, x, t, training):
        jnp = self.jax.numpy
        kwargs = {"training": training} if self.training_kwargs else {}
        y, non_trainable, losses = self.model.stateless_call(
            trainable, non_trainable, x, return_losses=True, **kwargs
        )
        loss = jnp.mean(jnp.square(t.astype(y.dtype) - y))
        for extra in losses:
            loss = loss + jnp.sum(extra).astype(loss.dtype)
        return loss, non_trainable

    def _step_seed(self, state, key, offset, step):
        trainable, non_trainable, m, v = state
        non_trainable = self._set_strengths(non_trainable, step)
        x, t = self.batch_fn(key, step, offset)
        (loss, non_trainable), grads = self.jax.value_and_grad(self._loss, has_aux=True)(
            trainable, non_trainable, x, t, True
        )
        trainable, m, v = adam_update(self.adam, trainable, grads, m, v, step)
        trainable = [
            p if c is None else self.jax.numpy.asarray(c(p), p.dtype)
            for p, c in zip(trainable, self.constraints)
        ]
        return (trainable, non_trainable, m, v), loss

    def _final_loss_seed(self, trainable, non_trainable, key, offset, step):
        non_trainable = self._set_strengths(non_trainable, step)
        x, t = self.batch_fn(key, step, offset)
        return self._loss(trainable, non_trainable, x, t, False)[0]

    def _eval_seed(self, trainable, non_trainable, x, t, mask):
        """MSE over chunks: x (chunks, chunk, n), t (chunks, chunk, 1), mask
        (chunks, chunk) with 0 on padding rows."""
        jax, jnp = self.jax, self.jax.numpy

        def chunk_sse(args):
            xc, tc, mc = args
            kwargs = {"training": False} if self.training_kwargs else {}
            y, _ = self.model.stateless_call(trainable, non_trainable, xc, **kwargs)
            err = jnp.square(tc.astype(y.dtype) - y)[..., 0]
            return jnp.sum(jnp.where(mc > 0, err, 0.0))

        sse = jax.lax.map(chunk_sse, (x, t, mask))
        return jnp.sum(sse) / jnp.sum(mask)

    # -- compiled entry points ----------------------------------------------
    def _offsets(self, keys, offsets):
        """The seeds' subset offsets as int32 (zeros where the batch
        function ignores them)."""
        jnp = self.jax.numpy
        if offsets is None:
            return jnp.zeros(len(keys), jnp.int32)
        return jnp.asarray(offsets, jnp.int32)

    def run(self, state, keys, start, count, offsets=None):
        """`count` steps from step `start`; returns (state, loss of first step)."""
        fn = self._runs.get(count)
        if fn is None:
            jax = self.jax
            vstep = jax.vmap(self._step_seed, in_axes=(0, 0, 0, None))

            def run(state, keys, offsets, start):
                def body(state, step):
                    return vstep(state, keys, offsets, step)

                steps = start + jax.numpy.arange(count, dtype=jax.numpy.int32)
                state, losses = jax.lax.scan(body, state, steps)
                return state, losses[0]

            fn = self._runs[count] = jax.jit(run, donate_argnums=(0,))
        return fn(state, keys, self._offsets(keys, offsets), self.jax.numpy.int32(start))

    def finalize(self, state, step):
        """The state with strengths(step) in its non-trainable values."""
        if self.strengths is None:
            return state
        if self._finalize is None:
            self._finalize = self.jax.jit(self.jax.vmap(self._set_strengths, in_axes=(0, None)))
        non_trainable = self._finalize(state[1], self.jax.numpy.int32(step))
        return (state[0], list(non_trainable), state[2], state[3])

    def final_loss(self, state, keys, step, offsets=None):
        trainable, non_trainable = state[0], state[1]
        return self._final_loss(trainable, non_trainable, keys, self._offsets(keys, offsets),
                                self.jax.numpy.int32(step))

    def evaluate(self, state, data):
        return self._eval(state[0], state[1], *data)


def _chunked(x, t, chunk):
    """x (n, …) and t (n, 1), or t (seeds, n, 1), cut into equal chunks of
    examples, the last padded with zeros; plus the mask of real rows."""
    n = len(x)
    chunk = max(1, min(chunk, n))
    chunks = -(-n // chunk)
    pad = chunks * chunk - n
    mask = np.ones(n, np.float32)
    example_axis = t.ndim - 2  # 1 when t has a seed axis
    if pad:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        padding = list(t.shape)
        padding[example_axis] = pad
        t = np.concatenate([t, np.zeros(padding, t.dtype)], axis=example_axis)
        mask = np.concatenate([mask, np.zeros(pad, np.float32)])
    return (
        x.reshape(chunks, chunk, *x.shape[1:]),
        t.reshape(*t.shape[:example_axis], chunks, chunk, *t.shape[example_axis + 1:]),
        mask.reshape(chunks, chunk),
    )


def train_vectorized(
    build_model,
    task,
    seeds,
    steps,
    *,
    interpolation_range="U[1,2]",
    extrapolation_range="U[2,6]",
    batch_size=128,
    learning_rate=1e-3,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    adam_form="keras",
    log_every=1000,
    strengths=None,
    validation_size=10_000,
    test_size=10_000,
    validation_seed=None,
    test_seed=None,
    rng="hash",
    steps_per_call=1000,
    seed_chunk=100,
    eval_chunk=2000,
    progress=False,
    workers=1,
    subsets="shared",
):
    """Train `build_model()` on `task` for every seed at once (JAX backend).

    Args:
        build_model: function () -> a built Keras model, e.g.
            `lambda: keras.Sequential([keras.Input((100,)), NAU(2), NMU(1)])`.
            Called once per seed after `keras.utils.set_random_seed(seed)`
            to initialize that seed (every call must build the same
            structure); training then uses the first seed's model only as a
            pure function (`stateless_call`).
        task: an `ArithmeticTask` (its subsets and op define the target).
        seeds: an int or a list of distinct ints in [0, 2**32): each seed
            fixes the initialization and the training-data stream.
        steps: int >= 0, optimizer steps per seed.
        interpolation_range: training and validation range (default U[1,2]).
        extrapolation_range: test range (default U[2,6]).
        batch_size: examples per step (default 128), a fresh batch each step.
        learning_rate, beta_1, beta_2, epsilon: Adam.
        adam_form: "keras" (default) or "pytorch", where ε enters Adam's
            step (see `adam_update`).
        log_every: log every this many steps (default 1000); the last step
            is logged too.
        strengths: None, or a function step -> {key: value} setting
            non-trainable variables (regularizer strengths) before each
            step inside the program (see `linear_warmup` and the module
            docstring for keys).
        validation_size, test_size: sizes of the fixed evaluation sets.
        validation_seed, test_seed: their numpy seeds (default
            [task.seed, 1], [task.seed, 2]).
        rng: "hash" (default) or "threefry"; see `make_batch_fn`.
        steps_per_call: the most steps compiled into one call (`lax.scan`
            length); calls also stop at logged steps.
        seed_chunk: the most seeds trained together in one compiled
            program; more seeds are trained in consecutive groups of this
            size (large groups fall out of the cache). The float32 rounding
            of a program can depend on how many seeds it holds, so results
            depend on `seed_chunk` (at rounding level), never on `workers`.
        eval_chunk: examples per evaluation chunk (bounds memory).
        progress: show a tqdm progress bar.
        workers: processes to split the seeds over (default 1: this
            process). XLA keeps about one CPU core busy per process here, so
            `workers=2` on a two-core machine trains nearly twice the
            seed-steps per second. Each worker is a fresh Python process
            (start-up and compilation of its own, a few seconds), so
            `build_model` and `strengths` must be picklable: module-level
            functions, `functools.partial` of them, or `linear_warmup`
            results. The workers share out the groups of `seed_chunk`
            seeds, so with more than one worker give a `seed_chunk` below
            the number of seeds; the result is bit for bit the same as with
            one process.
        subsets: "shared" (default): every seed learns `task` (its subsets
            are fixed by `task.seed`). "per-seed": seed s learns
            `task.with_seed(s)`, whose subsets start at an offset drawn from
            s, as Madsen & Johansen's code seeds its data with the run seed;
            the validation and test inputs stay those of `task` (shared
            by all seeds), their targets are each seed's own.

    Returns:
        A `TrainResult`.

    The numbers are those of `nalu_keras.lab.training.single.train_single` with
    the same arguments (one `model.fit` per seed), up to float32 rounding.
    """
    _check_backend()
    workers = _check_int("workers", workers, 1)
    seed_chunk = _check_int("seed_chunk", seed_chunk, 1)
    if workers > 1 and len(_check_seeds(seeds)) > seed_chunk:
        check_log_points(check_steps("steps", steps, minimum=0),
                         _check_int("log_every", log_every, 1), len(_check_seeds(seeds)))
        return _train_in_workers(
            workers, build_model, task, seeds, steps, seed_chunk,
            dict(interpolation_range=interpolation_range, extrapolation_range=extrapolation_range,
                 batch_size=batch_size, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                 epsilon=epsilon, adam_form=adam_form, log_every=log_every, strengths=strengths,
                 validation_size=validation_size, test_size=test_size,
                 validation_seed=validation_seed, test_seed=test_seed, rng=rng,
                 steps_per_call=steps_per_call, seed_chunk=seed_chunk, eval_chunk=eval_chunk,
                 subsets=subsets),
            progress,
        )
    jax = _jax()
    jnp = jax.numpy
    task, seeds, steps, log_every, eval_chunk, adam, validation, test, logged = _prepare_run(
        task, seeds, steps, log_every, eval_chunk, learning_rate, beta_1, beta_2, epsilon,
        interpolation_range, extrapolation_range, validation_size, test_size,
        validation_seed, test_seed, adam_form, subsets,
    )
    steps_per_call = _check_int("steps_per_call", steps_per_call, 1)
    per_seed = subsets == "per-seed"
    batch_fn = make_batch_fn(task, interpolation_range, batch_size, rng, subsets)
    validation = _chunked(*validation, eval_chunk)
    test = _chunked(*test, eval_chunk)
    offsets = np.array([own.offset for own in seed_tasks(task, seeds, subsets)], np.int32)

    def for_group(data, first, count):
        """The evaluation arrays of seeds first … first + count − 1."""
        x, t, mask = data
        if per_seed:
            t = t[first : first + count]
        return jnp.asarray(x), jnp.asarray(t), jnp.asarray(mask)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seeds) * steps, unit="seed-step", unit_scale=True)

    rows, trainable_out, non_trainable_out = [], [], []
    selected_out, selected_nt_out, selected_steps = [], [], []
    program, paths = None, None
    try:
        for first in range(0, len(seeds), seed_chunk):
            chunk = seeds[first : first + seed_chunk]
            reference, trainable, non_trainable = initial_values(build_model, chunk)
            if program is None:
                program = _Program(reference, batch_fn, adam, strengths, eval_chunk, per_seed)
                paths = [v.path for v in reference.trainable_variables]
            zeros = [np.zeros_like(p) for p in trainable]
            state = (
                [jnp.asarray(p) for p in trainable],
                [jnp.asarray(p) for p in non_trainable],
                [jnp.asarray(z) for z in zeros],
                [jnp.asarray(z) for z in zeros],
            )
            keys = jnp.asarray(np.stack([seed_key(s) for s in chunk]))
            chunk_offsets = jnp.asarray(offsets[first : first + len(chunk)])
            chunk_validation = for_group(validation, first, len(chunk))
            chunk_test = for_group(test, first, len(chunk))
            chunk_rows = {s: [] for s in chunk}
            tracker = SelectionTracker(len(chunk))
            for position, t in enumerate(logged):
                interp = np.asarray(program.evaluate(state, chunk_validation))
                extrap = np.asarray(program.evaluate(state, chunk_test))
                tracker.update(t, interp, lambda state=state: (state[0], state[1]))
                if t == steps:
                    train_loss = np.asarray(program.final_loss(state, keys, t, chunk_offsets))
                    state = program.finalize(state, t)
                else:
                    end = logged[position + 1]
                    done, train_loss = t, None
                    while done < end:
                        count = min(steps_per_call, end - done)
                        state, first_loss = program.run(state, keys, done, count, chunk_offsets)
                        if train_loss is None:
                            train_loss = first_loss
                        done += count
                        if bar is not None:
                            bar.update(count * len(chunk))
                    train_loss = np.asarray(train_loss)
                for i, seed in enumerate(chunk):
                    chunk_rows[seed].append(
                        {
                            "seed": seed,
                            "step": t,
                            "train_loss": float(train_loss[i]),
                            "interp_mse": float(interp[i]),
                            "extrap_mse": float(extrap[i]),
                        }
                    )
            for seed in chunk:
                rows.extend(chunk_rows[seed])
            trainable_out.append([np.asarray(p) for p in state[0]])
            non_trainable_out.append([np.asarray(p) for p in state[1]])
            selected_out.append(tracker.trainable)
            selected_nt_out.append(tracker.non_trainable)
            selected_steps.extend(tracker.steps)
    finally:
        if bar is not None:
            bar.close()

    concat = lambda parts: [np.concatenate(column) for column in zip(*parts)] if parts and parts[0] else []  # noqa: E731
    return TrainResult(
        rows=rows,
        seeds=seeds,
        trainable=concat(trainable_out),
        non_trainable=concat(non_trainable_out),
        trainable_paths=paths,
        selected_trainable=concat(selected_out),
        selected_non_trainable=concat(selected_nt_out),
        selected_steps=tuple(selected_steps),
    )


# ---------------------------------------------------------------------------
# Several processes


def _train_part(build_model, task, seeds, steps, kwargs):
    return train_vectorized(build_model, task, seeds, steps, **kwargs)


def _merge_results(parts):
    """One `TrainResult` of results over consecutive groups of seeds."""
    def concat(name):
        columns = [getattr(p, name) for p in parts]
        if not columns[0]:
            return []
        return [np.concatenate(group) for group in zip(*columns)]

    return TrainResult(
        rows=[row for part in parts for row in part.rows],
        seeds=tuple(seed for part in parts for seed in part.seeds),
        trainable=concat("trainable"),
        non_trainable=concat("non_trainable"),
        trainable_paths=parts[0].trainable_paths,
        selected_trainable=concat("selected_trainable"),
        selected_non_trainable=concat("selected_non_trainable"),
        selected_steps=tuple(step for part in parts for step in part.selected_steps),
    )


@contextlib.contextmanager
def _children_ignore_interrupts():
    """Start processes with SIGINT ignored from their first instruction (an
    ignored signal stays ignored across exec, and Python then installs no
    KeyboardInterrupt handler), so a Ctrl-C while a worker is still starting
    prints nothing there; the parent handles it. In this process SIGINT is
    ignored only while the workers are being started."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_interrupts():
    """Worker start-up: Ctrl-C is the parent's to handle (it ends the workers);
    and a worker ends when its parent does, even on SIGKILL (Linux)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent ends its workers itself
        pass


def _train_in_workers(workers, build_model, task, seeds, steps, seed_chunk, kwargs, progress):
    import concurrent.futures
    import multiprocessing
    import pickle

    seeds = _check_seeds(seeds)
    _check_task(task)
    for name, value in (("build_model", build_model), ("strengths", kwargs["strengths"])):
        try:
            pickle.dumps(value)
        except Exception as error:  # noqa: BLE001 - any pickling failure
            raise ValueError(
                f"workers > 1 needs a picklable `{name}` (a module-level function, a "
                f"functools.partial of one, or a linear_warmup result): {error}"
            ) from None
    # The same groups of `seed_chunk` seeds as in one process: each group is
    # one compiled program whatever the number of workers, so the numbers do
    # not depend on `workers` (a program's float32 rounding can depend on how
    # many seeds it holds).
    groups = [list(seeds[first : first + seed_chunk]) for first in range(0, len(seeds), seed_chunk)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seeds) * steps, unit="seed-step", unit_scale=True)
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(groups)), mp_context=context,
                                                    initializer=_ignore_interrupts) as pool:
            with _children_ignore_interrupts():
                futures = [pool.submit(_train_part, build_model, task, group, steps, kwargs)
                           for group in groups]
            parts = []
            for future, group in zip(futures, groups):
                parts.append(future.result())
                if bar is not None:
                    bar.update(len(group) * steps)
    finally:
        if bar is not None:
            bar.close()
    return _merge_results(parts)
