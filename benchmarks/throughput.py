"""Seed-steps per second of the trainers, for the Madsen & Johansen NMU model.

NAU 100 → 2, then NMU 2 → 1 (each with a `Sparsity` regularizer driven by a
linear warm-up), batch 128, Adam, a fresh batch every step, multiplication on
U[1, 2].

* vectorized: the compiled program of `train_vectorized` (vmap over seeds,
  `steps_per_call` steps per call), timed over whole calls after a warm-up
  call (compilation excluded), for both data generators.
* `train_single`: the per-seed reference path (`model.fit`, one step per
  execution, a callback before every step), N steps over the whole call,
  compilation included.
* plain `model.fit` on pre-generated batches with `steps_per_execution` 1 and
  100 (what the reference path would cost without its per-step callback).

* end to end: `train_vectorized` as the benchmark calls it (100 seeds,
  logging and evaluation every 1,000 steps on 10,000 + 10,000 examples,
  compilation included) in one process and split over `--workers` processes
  (`workers=2`, process start-up included).

Run:  .venv/bin/python benchmarks/throughput.py [--seeds 1 10 100] [--calls 3]
      .venv/bin/python benchmarks/throughput.py --only-end-to-end --workers 1 2
Timings depend on the machine and on its load; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import nalu_keras  # noqa: E402,F401
from nalu_keras import NAU, NMU  # noqa: E402
from nalu_keras.lab.tasks.arithmetic import ArithmeticTask  # noqa: E402
from nalu_keras.lab.training import draw_batches, linear_warmup, train_single  # noqa: E402
from nalu_keras.lab.training import vectorized as vec  # noqa: E402
from nalu_keras.regularizers import Sparsity  # noqa: E402

TASK = ArithmeticTask("mul")
STRENGTHS = linear_warmup("sparsity_strength", 10.0, 10**6, 2 * 10**6)


def build():
    return keras.Sequential(
        [
            keras.Input((100,)),
            NAU(2, w_regularizer=Sparsity(0.0)),
            NMU(1, w_regularizer=Sparsity(0.0)),
        ]
    )


def vectorized_rate(n_seeds, steps_per_call, calls, rng):
    seeds = list(range(n_seeds))
    reference, trainable, non_trainable = vec.initial_values(build, seeds)
    batch_fn = vec.make_batch_fn(TASK, "U[1,2]", 128, rng)
    program = vec._Program(reference, batch_fn, vec.Adam(), STRENGTHS, 2000)
    zeros = [np.zeros_like(p) for p in trainable]
    state = tuple([jax.numpy.asarray(a) for a in group] for group in (trainable, non_trainable, zeros, zeros))
    keys = jax.numpy.asarray(np.stack([vec.seed_key(s) for s in seeds]))
    state, loss = program.run(state, keys, 0, steps_per_call)  # compile + warm-up
    loss.block_until_ready()
    start = time.perf_counter()
    for i in range(calls):
        state, loss = program.run(state, keys, (i + 1) * steps_per_call, steps_per_call)
    loss.block_until_ready()
    return n_seeds * steps_per_call * calls / (time.perf_counter() - start)


def single_rate(steps):
    """Whole-call rate of `train_single` for one seed, compilation included.

    Every call builds and compiles a fresh model, so compilation cannot be
    separated reliably; with a few thousand steps it is a small share.
    """
    def timed(n):
        start = time.perf_counter()
        train_single(build, TASK, [0], n, log_every=n, validation_size=1000, test_size=1000, strengths=STRENGTHS)
        return time.perf_counter() - start

    timed(10)  # warm caches (imports, first-use costs)
    return steps / timed(steps)


def fit_rate(steps, steps_per_execution):
    x, t = draw_batches(TASK, "U[1,2]", 0, 0, 2 * steps, 128)
    x, t = x.reshape(-1, 100), t.reshape(-1, 1)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", steps_per_execution=steps_per_execution)
    model.fit(x[: 128 * steps], t[: 128 * steps], batch_size=128, epochs=1, shuffle=False, verbose=0)
    start = time.perf_counter()
    model.fit(x[128 * steps :], t[128 * steps :], batch_size=128, epochs=1, shuffle=False, verbose=0)
    return steps / (time.perf_counter() - start)


def end_to_end_rate(n_seeds, steps, workers):
    start = time.perf_counter()
    vec.train_vectorized(build, TASK, list(range(n_seeds)), steps, strengths=STRENGTHS, workers=workers)
    return n_seeds * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--steps-per-call", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--rng", nargs="+", default=["hash", "threefry"])
    parser.add_argument("--fit-steps", type=int, default=1000)
    parser.add_argument("--no-fit", action="store_true")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--end-to-end-steps", type=int, default=20_000)
    parser.add_argument("--end-to-end-seeds", type=int, default=100)
    parser.add_argument("--only-end-to-end", action="store_true")
    args = parser.parse_args()

    print(f"jax {jax.__version__}, keras {keras.__version__}, "
          f"threefry_partitionable={jax.config.jax_threefry_partitionable}, load {os.getloadavg()[0]:.1f}")
    print("| trainer | rng | seeds | seed-steps/s |")
    print("|---|---|---|---|")
    for rng in [] if args.only_end_to_end else args.rng:
        for n in args.seeds:
            r = vectorized_rate(n, args.steps_per_call, args.calls, rng)
            print(f"| vectorized ({args.steps_per_call} steps/call) | {rng} | {n} | {r:,.0f} |", flush=True)
    for workers in args.workers:
        n, steps = args.end_to_end_seeds, args.end_to_end_steps
        r = end_to_end_rate(n, steps, workers)
        print(f"| train_vectorized end to end ({steps} steps, workers={workers}) | hash | {n} | {r:,.0f} |",
              flush=True)
    if not args.no_fit and not args.only_end_to_end:
        for spe in (1, 100):
            r = fit_rate(args.fit_steps, spe)
            print(f"| model.fit, steps_per_execution={spe} | (pre-drawn) | 1 | {r:,.0f} |", flush=True)
        r = single_rate(args.fit_steps // 2)
        print(f"| train_single (model.fit + callback, compile included) | hash | 1 | {r:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
