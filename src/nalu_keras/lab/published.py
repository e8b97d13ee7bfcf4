"""Published per-seed results of Madsen & Johansen's Table 1, shipped with the package.

The reference column of our re-run of the "simple function static" benchmark
of "Neural Arithmetic Units" (Madsen & Johansen, ICLR 2020): the arithmetic
task 100 → 2 → 1, inputs U[1,2] (interpolation) and U[2,6] (extrapolation),
5·10⁶ training steps, 100 seeds for each of 10 models × 6 operations.

Source and licence
------------------
The numbers come from `paper/results/sft-last.csv` of the repository
AndreasMadsen/stable-nalu, MIT licence, Copyright (c) 2019 Andreas Madsen and
Alexander Rosenberg Johansen. The licence and attribution are kept beside the
data, in `nalu_keras/lab/data/published/NOTICE.md`; keep that file wherever the
data is copied.

The shipped file
----------------
`nalu_keras/lab/data/published/madsen2020_sft_last.csv` holds one line per run
(6,000 lines), sorted by `ROWS`, then `OPS`, then seed, with the columns

    row             our name of their model (one of `ROWS`)
    op              our name of the operation (one of `OPS`)
    seed            0 … 99
    solved          TRUE / FALSE: their `solved` (extrapolation MSE at the
                    selected step below the threshold)
    solved_at       their `extrapolation.step.solved`: the iteration of the
                    first logged step whose extrapolation MSE is below the
                    threshold; empty where they have NA
    sparsity_error  their `sparse.error.max` at the selected step
    selected_step   the iteration of the selected step, (best.model.step − 1)·1000
                    (`best.model.step` is a 1-based index of logged points,
                    one every 1,000 iterations)
    threshold       their Monte-Carlo success threshold for the operation
    size            number of logged points of the run (5001 for a full run;
                    27 NALU runs stopped early and have fewer)

Floating-point values are copied as the original text, so nothing is rounded.
The file is rebuilt, byte for byte, from the original with

    python -m nalu_keras.lab.published --rebuild PATH/TO/sft-last.csv [--output FILE]

(see `rebuild_published`).

Caveat: in 28 of the 1,364 solved runs `selected_step` comes out earlier than
`solved_at`, which should not happen if both count the same logged points in
order; `selected_step` is therefore best read as approximate. Nothing in this
module's success counts uses it.

Success rules
-------------
* `published_success(row, op)`: seeds with `solved` TRUE, over the seeds
  (100), after the full 5·10⁶ steps (`FULL_STEPS`). These are the success rates
  of their Table 1.
* `published_solved_by(row, op, steps)`: seeds with `solved` TRUE *and*
  `solved_at` ≤ steps, over the seeds. This is the share of seeds that the
  published protocol counts as solved and that had first reached the threshold
  by `steps` (e.g. NMU on ×: 0/100 by 5·10⁴, 92/100 by 2·10⁶, 98/100 by 5·10⁶).
  Runs that stopped early count as trials (unsolved).

Importing this module needs numpy only; scipy is imported by
`compare_success`, the one function that needs it.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import math
import numbers
import os
import sys
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = [
    "FULL_STEPS",
    "OPS",
    "PUBLISHED_SOURCE",
    "ROWS",
    "SEEDS",
    "PublishedRun",
    "compare_success",
    "load_published",
    "published_row",
    "published_runs",
    "published_solved_at_median",
    "published_reached_by",
    "published_solved_by",
    "published_success",
    "rebuild_published",
]

ROWS = ("Linear", "ReLU", "ReLU6", "NAC+", "NAC•", "NAC•,σ", "NAC•,NMU", "NALU", "NAU", "NMU")
OPS = ("add", "sub", "mul", "div", "squared", "root")

# Training length of every published run, in iterations.
FULL_STEPS = 5_000_000
# Seeds per (row, op) in the published table.
SEEDS = 100
# Iterations between two logged points of the published runs.
_LOG_EVERY = 1000

PUBLISHED_SOURCE = (
    "Madsen & Johansen, 'Neural Arithmetic Units', ICLR 2020, Table 1; per-seed results "
    "paper/results/sft-last.csv of github.com/AndreasMadsen/stable-nalu "
    "(MIT licence, Copyright (c) 2019 Andreas Madsen and Alexander Rosenberg Johansen)"
)

_DATA_PACKAGE = "nalu_keras.lab.data"
_DATA_DIR = "published"
_DATA_FILE = "madsen2020_sft_last.csv"

_COLUMNS = (
    "row", "op", "seed", "solved", "solved_at", "sparsity_error",
    "selected_step", "threshold", "size",
)

# Their model and operation labels (LaTeX, as in the original CSV) → ours.
_MODEL_TO_ROW = {
    "Linear": "Linear",
    "ReLU": "ReLU",
    "ReLU6": "ReLU6",
    r"$\mathrm{NAC}_{+}$": "NAC+",
    r"$\mathrm{NAC}_{\bullet}$": "NAC•",
    r"$\mathrm{NAC}_{\bullet,\sigma}$": "NAC•,σ",
    r"$\mathrm{NAC}_{\bullet,\mathrm{NMU}}$": "NAC•,NMU",
    "NALU": "NALU",
    "NAU": "NAU",
    "NMU": "NMU",
}
_OPERATION_TO_OP = {
    r"$\bm{+}$": "add",
    r"$\bm{-}$": "sub",
    r"$\bm{\times}$": "mul",
    r"$\bm{\mathbin{/}}$": "div",
    r"$z^2$": "squared",
    r"$\sqrt{z}$": "root",
}

# Units of our benchmark (`nalu_keras.lab.experiments.benchmark.UNITS`) that have
# no published row. Every other benchmark unit is named like its row.
_UNPUBLISHED_UNITS = ("NPU", "RealNPU")


class PublishedRun(NamedTuple):
    """One published run (one seed of one model on one operation)."""

    row: str
    op: str
    seed: int
    solved: bool
    solved_at: int | None  # iteration; None where the original has NA
    sparsity_error: float
    selected_step: int  # iteration (approximate, see the module docstring)
    threshold: float
    size: int


# --------------------------------------------------------------------------
# Loading


def _data_text():
    resource = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR).joinpath(_DATA_FILE)
    return resource.read_text(encoding="utf-8")


def _parse_bool(text, where):
    if text == "TRUE":
        return True
    if text == "FALSE":
        return False
    raise ValueError(f"{where}: expected TRUE or FALSE, got {text!r}")


@functools.cache
def load_published():
    """All 6,000 published runs, as a tuple of `PublishedRun` (named tuples,
    so the cached result cannot be changed by a caller; `run._asdict()` gives
    a dict). Read from the copy shipped in the package, never from the
    network; cached after the first call."""
    reader = csv.reader(io.StringIO(_data_text(), newline=""))
    header = tuple(next(reader, ()))
    if header != _COLUMNS:
        raise ValueError(f"{_DATA_FILE}: unexpected columns {header}, expected {_COLUMNS}")
    runs = []
    for number, fields in enumerate(reader, start=2):
        where = f"{_DATA_FILE} line {number}"
        if len(fields) != len(_COLUMNS):
            raise ValueError(f"{where}: {len(fields)} fields, expected {len(_COLUMNS)}")
        row, op, seed, solved, solved_at, sparsity, selected, threshold, size = fields
        if row not in ROWS or op not in OPS:
            raise ValueError(f"{where}: unknown row/op {row!r}/{op!r}")
        runs.append(PublishedRun(
            row=row,
            op=op,
            seed=int(seed),
            solved=_parse_bool(solved, where),
            solved_at=int(solved_at) if solved_at else None,
            sparsity_error=float(sparsity),
            selected_step=int(selected),
            threshold=float(threshold),
            size=int(size),
        ))
    return tuple(runs)


@functools.cache
def _by_cell():
    cells = {(row, op): [] for row in ROWS for op in OPS}
    for run in load_published():
        cells[run.row, run.op].append(run)
    return {key: tuple(sorted(runs, key=lambda run: run.seed)) for key, runs in cells.items()}


# --------------------------------------------------------------------------
# Argument checks


def _check_cell(row, op):
    if row not in ROWS:
        raise ValueError(f"unknown published row {row!r}; expected one of {ROWS}")
    if op not in OPS:
        raise ValueError(f"unknown operation {op!r}; expected one of {OPS}")


def _as_count(value, name):
    """`value` as a non-negative int: ints (numpy ones too) and integral
    floats; never bools, fractions, NaN or negatives."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a non-negative integer, got the bool {value!r}")
    if isinstance(value, numbers.Integral):
        count = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        count = int(value)
    else:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if count < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return count


def _as_steps(steps):
    try:
        count = _as_count(steps, "steps")
    except ValueError:
        raise ValueError(f"steps must be a positive integer, got {steps!r}") from None
    if count <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return count


# --------------------------------------------------------------------------
# Published counts


def published_runs(row, op):
    """The 100 published runs of one (row, op), sorted by seed."""
    _check_cell(row, op)
    return _by_cell()[row, op]


def published_success(row, op):
    """(successes, trials) of the published runs after the full `FULL_STEPS`
    (5·10⁶) steps: seeds with `solved` TRUE, over the seeds (100)."""
    runs = published_runs(row, op)
    return sum(run.solved for run in runs), len(runs)


def published_solved_by(row, op, steps):
    """(successes, trials): seeds whose run is `solved` and whose `solved_at`
    (first logged step under the threshold) is at most `steps`, over the seeds
    (100). For `steps` ≥ `FULL_STEPS` this equals `published_success`."""
    steps = _as_steps(steps)
    runs = published_runs(row, op)
    solved = sum(run.solved and run.solved_at is not None and run.solved_at <= steps
                 for run in runs)
    return solved, len(runs)


def published_reached_by(row, op, steps):
    """(reached, trials): seeds whose extrapolation MSE had fallen below the
    threshold at some logged step ≤ `steps` (`solved_at` ≤ steps), whether or
    not the run was finally `solved`, over the seeds (100). This depends only
    on the first `steps` steps of training, so it is the published quantity
    that a run of `steps` steps measures exactly (our `solved_at`)."""
    steps = _as_steps(steps)
    runs = published_runs(row, op)
    return sum(run.solved_at is not None and run.solved_at <= steps for run in runs), len(runs)


RULES = ("solved", "reached")


def published_solved_at_median(row, op):
    """Median `solved_at` (iterations) over the solved seeds, None if no seed
    is solved: the "converged at" median of their summary table."""
    steps = [run.solved_at for run in published_runs(row, op) if run.solved]
    if not steps:
        return None
    return float(np.median(np.asarray(steps, dtype=np.float64)))


def published_row(unit):
    """The published row of one of our benchmark's units, or None for the
    units without one ("NPU", "RealNPU"). Our unit names equal the row names;
    the published-only rows ("ReLU", "ReLU6", "NAC•,NMU") map to themselves.
    Any other name is a ValueError, so that a typo is not read as "no row"."""
    if unit in ROWS:
        return unit
    if unit in _UNPUBLISHED_UNITS:
        return None
    raise ValueError(
        f"unknown unit {unit!r}; expected one of {ROWS + _UNPUBLISHED_UNITS}")


def compare_success(our_successes, our_trials, row, op, steps, alpha=0.01, rule="solved"):
    """Our success count against the published one for the same (row, op).

    `our_successes` of `our_trials` seeds after `steps` training steps are
    compared, with Fisher's exact test (two-sided), to the published count at
    the same step count: with `rule` "solved" (default) the seeds solved and
    first under the threshold by then (`published_solved_by`); with "reached"
    the seeds first under the threshold by then (`published_reached_by`; give
    our count of seeds with a solved-at step, which is the same quantity).
    Returns a dict:

        row, op, steps, alpha
        ours                  (successes, trials)
        ours_share            successes / trials
        published             (successes, trials) solved by `steps`
        published_share
        published_full        (successes, trials) after FULL_STEPS
        published_full_share
        p_value               Fisher's exact test on [[ours], [published]]
        agree                 p_value >= alpha

    `agree` False means the difference is unlikely (at level `alpha`) to be
    seed noise alone. Raises ValueError for an unknown row or op, counts that
    are not non-negative integers, successes > trials, no trials, steps <= 0
    or alpha outside (0, 1).
    """
    successes = _as_count(our_successes, "our_successes")
    trials = _as_count(our_trials, "our_trials")
    if trials == 0:
        raise ValueError("our_trials must be at least 1")
    if successes > trials:
        raise ValueError(
            f"our_successes ({successes}) must not exceed our_trials ({trials})")
    _check_cell(row, op)
    steps = _as_steps(steps)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real) \
            or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")

    from scipy.stats import fisher_exact

    count = published_solved_by if rule == "solved" else published_reached_by
    pub_successes, pub_trials = count(row, op, steps)
    full_successes, full_trials = published_success(row, op)
    table = [[successes, trials - successes], [pub_successes, pub_trials - pub_successes]]
    p_value = float(fisher_exact(table, alternative="two-sided")[1])
    p_value = min(1.0, p_value)
    return {
        "row": row,
        "op": op,
        "rule": rule,
        "steps": steps,
        "alpha": float(alpha),
        "ours": (successes, trials),
        "ours_share": successes / trials,
        "published": (pub_successes, pub_trials),
        "published_share": pub_successes / pub_trials,
        "published_full": (full_successes, full_trials),
        "published_full_share": full_successes / full_trials,
        "p_value": p_value,
        "agree": bool(p_value >= alpha),
    }


# --------------------------------------------------------------------------
# Rebuilding the shipped file from the original


def _default_output():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", _DATA_DIR, _DATA_FILE)


def _compact_lines(source):
    """The shipped CSV's text, built from the original sft-last.csv at `source`."""
    with open(source, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        needed = ("model", "operation", "seed", "solved", "extrapolation.step.solved",
                  "sparse.error.max", "best.model.step", "threshold", "size")
        missing = [name for name in needed if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{source}: missing columns {missing}")
        cells = {}
        for number, record in enumerate(reader, start=2):
            where = f"{source} line {number}"
            try:
                row = _MODEL_TO_ROW[record["model"]]
                op = _OPERATION_TO_OP[record["operation"]]
            except KeyError:
                raise ValueError(f"{where}: unknown model/operation "
                                 f"{record['model']!r}/{record['operation']!r}") from None
            seed = int(record["seed"])
            solved = _parse_bool(record["solved"], where)
            solved_at = record["extrapolation.step.solved"]
            solved_at = "" if solved_at == "NA" else str(int(solved_at))
            if solved and not solved_at:
                raise ValueError(f"{where}: solved but extrapolation.step.solved is NA")
            index = int(record["best.model.step"])
            if index < 1:
                raise ValueError(f"{where}: best.model.step {index} < 1")
            for name in ("sparse.error.max", "threshold"):
                float(record[name])  # must parse; the text itself is kept
            key = (ROWS.index(row), OPS.index(op), seed)
            if key in cells:
                raise ValueError(f"{where}: duplicate run {row}/{op}/seed {seed}")
            cells[key] = (
                row, op, str(seed), "TRUE" if solved else "FALSE", solved_at,
                record["sparse.error.max"], str((index - 1) * _LOG_EVERY),
                record["threshold"], str(int(record["size"])),
            )
    expected = {(r, o, s) for r in range(len(ROWS)) for o in range(len(OPS)) for s in range(SEEDS)}
    if set(cells) != expected:
        raise ValueError(f"{source}: expected seeds 0…{SEEDS - 1} for each of "
                         f"{len(ROWS)} rows × {len(OPS)} ops, got {len(cells)} runs")
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for key in sorted(cells):
        writer.writerow(cells[key])
    return out.getvalue()


def rebuild_published(source, output=None):
    """Write the shipped compact CSV from the original `sft-last.csv` at
    `source` (to `output`, by default the package's own copy) and return the
    path written. The result is deterministic: the same source gives the same
    bytes. Note that the package's copy is cached by `load_published`."""
    text = _compact_lines(source)
    output = _default_output() if output is None else os.fspath(output)
    from nalu_keras.lab._files import atomic_write

    with atomic_write(output, newline="") as handle:
        handle.write(text)
    return output


def _main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nalu_keras.lab.published",
        description="Rebuild the shipped copy of Madsen & Johansen's (ICLR 2020) per-seed "
                    "Table 1 results from the original sft-last.csv.")
    parser.add_argument("--rebuild", metavar="SFT_LAST_CSV", required=True,
                        help="path of the original paper/results/sft-last.csv")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help=f"where to write (default: the package's {_DATA_FILE})")
    args = parser.parse_args(argv)
    try:
        path = rebuild_published(args.rebuild, args.output)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
