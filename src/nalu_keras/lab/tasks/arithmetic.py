"""The static arithmetic task: a and b are sums of two subsets of the input.

Pure numpy, no Keras. Following Trask et al. (2018) and the exact form of
Madsen & Johansen (2020):

    x ∈ R^n, x_i iid from a value range
    s = floor(subset_ratio · n)          (subset size)
    o = floor(overlap_ratio · s)         (overlap of the two subsets)
    a = Σ x[k : k + s]
    b = Σ x[k + s − o : k + 2s − o]
    t = op(a, b)

The offset k is drawn once per task seed, uniformly from the offsets that keep
both subsets inside the input.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

# How a multi-seed run assigns subsets: every seed the task's own ("shared"),
# or each seed those of `task.with_seed(seed)` ("per-seed")
SUBSET_MODES = ("shared", "per-seed")

OPERATIONS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "squared": lambda a, b: a * a,
    "root": lambda a, b: np.sqrt(a),
}

OP_SYMBOLS = {
    "add": "a+b",
    "sub": "a-b",
    "mul": "a*b",
    "div": "a/b",
    "squared": "a^2",
    "root": "sqrt(a)",
}


@dataclasses.dataclass(frozen=True)
class ValueRange:
    """A uniform distribution over one interval or a union of intervals.

    Each sampled element first picks one of the intervals with equal
    probability, then a uniform value inside it (as in Madsen & Johansen's
    `[[-6, -2], [2, 6]]`).

    Build one with `ValueRange.parse("U[1,2]")` or
    `ValueRange.parse("[-6,-2]u[2,6]")`, or directly from pairs.
    """

    parts: tuple

    def __post_init__(self):
        parts = tuple((float(lo), float(hi)) for lo, hi in self.parts)
        if not parts:
            raise ValueError("A value range needs at least one interval.")
        for lo, hi in parts:
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise ValueError(
                    f"Invalid interval [{lo}, {hi}]: bounds must be finite and "
                    "lower < upper."
                )
        object.__setattr__(self, "parts", parts)

    @classmethod
    def parse(cls, text):
        """Parse "U[1,2]", "[1,2]", "[-6,-2]u[2,6]" or "U[-6,-2]∪U[2,6]"."""
        if isinstance(text, ValueRange):
            return text
        pieces = [
            piece
            for piece in re.split(r"(?<=\])\s*(?:∪|u|\|)?\s*", str(text).strip())
            if piece
        ] or [""]
        parts = []
        pattern = re.compile(
            r"^U?\[\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\]$", re.IGNORECASE
        )
        for piece in pieces:
            match = pattern.match(piece.strip())
            if not match:
                raise ValueError(
                    f"Cannot parse value range {text!r}; expected e.g. 'U[1,2]' "
                    "or '[-6,-2]u[2,6]'."
                )
            parts.append((float(match.group(1)), float(match.group(2))))
        return cls(tuple(parts))

    @property
    def low(self):
        return min(lo for lo, _ in self.parts)

    @property
    def high(self):
        return max(hi for _, hi in self.parts)

    def sample(self, rng, shape):
        """Draw values of `shape` with the numpy Generator `rng`."""
        if len(self.parts) == 1:
            lo, hi = self.parts[0]
            return rng.uniform(lo, hi, size=shape)
        choice = rng.integers(0, len(self.parts), size=shape)
        lows = np.array([lo for lo, _ in self.parts])[choice]
        highs = np.array([hi for _, hi in self.parts])[choice]
        return rng.uniform(0.0, 1.0, size=shape) * (highs - lows) + lows

    def __str__(self):
        """The canonical text, e.g. "U[1,2]" or "U[-6,-2]∪U[2,6]"; it keeps
        every digit of the bounds, so `ValueRange.parse(str(r)) == r`."""
        return "∪".join(f"U[{_bound_text(lo)},{_bound_text(hi)}]" for lo, hi in self.parts)


def _bound_text(value):
    """The shortest text that parses back to exactly `value` ("2" for 2.0)."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
    """One static arithmetic data set: which inputs form a and b, and the op.

    Args:
        op: one of "add", "sub", "mul", "div", "squared", "root".
        input_size: length of the input vector (default 100).
        subset_ratio: size of each subset as a fraction of the input.
        overlap_ratio: overlap of the two subsets as a fraction of a subset.
        seed: the data set seed; fixes the subsets' offset.
    """

    op: str
    input_size: int = 100
    subset_ratio: float = 0.25
    overlap_ratio: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.op not in OPERATIONS:
            raise ValueError(
                f"Unknown op {self.op!r}; expected one of {', '.join(OPERATIONS)}."
            )
        if isinstance(self.input_size, bool) or int(self.input_size) != self.input_size or self.input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {self.input_size!r}.")
        if not 0 < self.subset_ratio <= 1:
            raise ValueError(f"subset_ratio must be in (0, 1], got {self.subset_ratio!r}.")
        if not 0 <= self.overlap_ratio <= 1:
            raise ValueError(f"overlap_ratio must be in [0, 1], got {self.overlap_ratio!r}.")
        if self.subset_size < 1:
            raise ValueError(
                f"subset_ratio={self.subset_ratio} of input_size={self.input_size} "
                "gives an empty subset."
            )
        if self.span > self.input_size:
            raise ValueError(
                f"The two subsets ({self.subset_size} each, overlap "
                f"{self.overlap_size}) do not fit in input_size={self.input_size}."
            )

    @property
    def subset_size(self):
        return int(math.floor(self.subset_ratio * self.input_size))

    @property
    def overlap_size(self):
        return int(math.floor(self.overlap_ratio * self.subset_size))

    @property
    def span(self):
        """Inputs covered by the two subsets together."""
        return 2 * self.subset_size - self.overlap_size

    @property
    def offset(self):
        """The start k of the first subset, fixed by the task seed."""
        rng = np.random.default_rng([self.seed, 0x5EED])
        return int(rng.integers(0, self.input_size - self.span + 1))

    @property
    def subsets(self):
        """(a_slice, b_slice): the input positions summed into a and b."""
        k, s, o = self.offset, self.subset_size, self.overlap_size
        return slice(k, k + s), slice(k + s - o, k + 2 * s - o)

    def with_seed(self, seed):
        """The same task with data set seed `seed` (so its own subset offset)."""
        return dataclasses.replace(self, seed=seed)

    def target(self, x):
        """op(a, b) for inputs x of shape (..., input_size), as a column."""
        a_slice, b_slice = self.subsets
        a = x[..., a_slice].sum(axis=-1)
        b = x[..., b_slice].sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return OPERATIONS[self.op](a, b)[..., None]

    def sample(self, n, value_range, seed, dtype=np.float32):
        """Draw `n` examples: inputs (n, input_size) and targets (n, 1).

        The inputs are drawn in float64 and the target is computed from those
        float64 values before both are cast to `dtype`.
        """
        x = self.sample_inputs(n, value_range, seed)
        return x.astype(dtype), self.target(x).astype(dtype)

    def sample_inputs(self, n, value_range, seed):
        """The float64 inputs (n, input_size) that `sample(n, value_range,
        seed)` draws (the same values before its cast)."""
        rng = np.random.default_rng(seed)
        return ValueRange.parse(value_range).sample(rng, (n, self.input_size))

    def sample_sequences(self, n, length, value_range, seed, dtype=np.float32):
        """Draw `n` sequences of `length` input vectors and their targets.

        a and b accumulate over the whole sequence: a = Σ_t Σ x_t[a_slice],
        b likewise, and the target is op(a, b) after the last step.

        Returns inputs (n, length, input_size) and targets (n, 1).
        """
        if isinstance(length, bool) or int(length) != length or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        rng = np.random.default_rng(seed)
        x = ValueRange.parse(value_range).sample(rng, (n, int(length), self.input_size))
        return x.astype(dtype), self.target(x.sum(axis=1)).astype(dtype)
