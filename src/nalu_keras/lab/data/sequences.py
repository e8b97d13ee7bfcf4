"""Sequences of digit images, drawn as indices into one split, with their targets.

A sequence is a row of image indices into ONE split of a `DigitImages`
(`x_train`/`y_train` or `x_test`/`y_test`): training sequences index the
training images only and test sequences the test images only, so no test
image can appear in a training sequence. Images are not copied; gather them
when needed with `DigitSequences.images(...)` or by indexing pre-computed
per-image features with `DigitSequences.indices`.

Each position is an image drawn uniformly, with replacement, from the
split's images whose label is in `digits` (default all ten), so the digit
frequencies follow the split's label frequencies. An image may appear more
than once, in one sequence or across sequences (sequences of length 1,000
drawn from a few hundred images must repeat).

Targets, all computed from the labels of the drawn images:

- counting: (n, 10) how many of each digit the sequence holds;
- addition: (n,) the sum of the digit values;
- parity: (n,) that sum mod 2 (1 = odd);
- running_sum / running_product: (n, length) float64, the sum / product of
  the digits up to and including each step (products overflow to inf
  beyond float64's range, about 10^308).

Pure numpy, seeded: the same arguments and seed give the same sequences.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NUM_CLASSES = 10
TASK_TARGETS = ("counting", "addition", "parity")
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class DigitSequences:
    """Sequences of images from one split, as indices, with their digit labels.

    Attributes:
        indices: (n, length) int64, indices into the split's images.
        digits: (n, length) int64, the labels of those images.
        split: "train" or "test": the split the indices refer to.
    """

    indices: np.ndarray
    digits: np.ndarray
    split: str

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {self.split!r}")
        if self.indices.shape != self.digits.shape or self.indices.ndim != 2:
            raise ValueError(
                f"indices and digits must both have shape (n, length), got "
                f"{self.indices.shape} and {self.digits.shape}"
            )

    def __len__(self):
        return self.indices.shape[0]

    @property
    def length(self):
        return self.indices.shape[1]

    def images(self, source):
        """The images, (n, length, H, W, C): `source` is a DigitImages or the split's array."""
        array = source.split(self.split)[0] if hasattr(source, "split") else source
        return np.asarray(array)[self.indices]

    def counts(self):
        """(n, 10) int64: how many times each digit occurs."""
        return count_digits(self.digits)

    def sums(self):
        """(n,) int64: the sum of the digit values."""
        return self.digits.sum(axis=1)

    def parity(self):
        """(n,) int64: the sum of the digit values mod 2 (1 = odd)."""
        return self.sums() % 2

    def running_sum(self):
        """(n, length) float64: the sum of the digits up to each step."""
        return np.cumsum(self.digits.astype(np.float64), axis=1)

    def running_product(self):
        """(n, length) float64: the product of the digits up to each step (inf on overflow)."""
        with np.errstate(over="ignore"):
            return np.cumprod(self.digits.astype(np.float64), axis=1)

    def targets(self, task):
        """The targets of "counting", "addition" or "parity"."""
        if task == "counting":
            return self.counts()
        if task == "addition":
            return self.sums()
        if task == "parity":
            return self.parity()
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASK_TARGETS)}")

    def subset(self, rows):
        """The sequences at `rows` (a slice, mask or index array)."""
        return DigitSequences(self.indices[rows], self.digits[rows], self.split)


def count_digits(digits):
    """(n, 10) int64 digit counts of an (n, length) array of labels."""
    digits = np.asarray(digits, dtype=np.int64)
    offsets = np.arange(digits.shape[0])[:, None] * NUM_CLASSES
    flat = np.bincount((digits + offsets).ravel(), minlength=digits.shape[0] * NUM_CLASSES)
    return flat.reshape(digits.shape[0], NUM_CLASSES)


def sample_sequences(labels, n, length, seed, digits=None, split="train"):
    """`n` sequences of `length` image indices drawn from images with labels `labels`.

    Args:
        labels: (N,) int labels of the split's images.
        n, length: positive ints.
        seed: an int or a sequence of ints (numpy SeedSequence entropy).
        digits: the allowed digit values (e.g. range(1, 10)); None = all.
        split: "train" or "test", recorded in the result.

    Returns:
        A `DigitSequences`.
    """
    labels = np.asarray(labels)
    for name, value in (("n", n), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    allowed = _allowed_digits(digits)
    pool = np.flatnonzero(np.isin(labels, allowed))
    if pool.size == 0:
        raise ValueError(
            f"the {split} split has no image with a digit in {list(allowed)}"
        )
    rng = np.random.default_rng(seed)
    indices = pool[rng.integers(0, pool.size, size=(n, length))].astype(np.int64)
    return DigitSequences(indices, labels[indices].astype(np.int64), split)


def make_sequences(images, split, n, length, seed, digits=None):
    """`n` sequences of `length` images from one split of a `DigitImages`.

    Training sequences come from `images.x_train` only, test sequences from
    `images.x_test` only. See `sample_sequences` for the arguments.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    _, labels = images.split(split)
    return sample_sequences(labels, n, length, seed, digits=digits, split=split)


def _allowed_digits(digits):
    if digits is None:
        return np.arange(NUM_CLASSES)
    allowed = np.unique(np.asarray(list(digits)))
    if allowed.size == 0:
        raise ValueError("digits must name at least one digit 0..9")
    if not np.issubdtype(allowed.dtype, np.integer) or allowed.min() < 0 or allowed.max() > 9:
        raise ValueError(f"digits must be integers 0..9, got {list(digits)!r}")
    return allowed
