"""Handwritten digit images: MNIST from a local file, or scikit-learn's digits.

Nothing here downloads anything. `load_digit_images` looks, in order, at

1. a file the caller names (`path=`),
2. the file `keras.datasets.mnist.load_data()` leaves in its cache
   (`keras_mnist_cache_path()`), if it is there,
3. scikit-learn's bundled 8x8 digits (1,797 images, shipped with the
   library), split into a fixed, stratified train / test pair,

according to `source`:

- "auto": the named file if `path` is given (a failure is an error, never a
  silent switch to another data set); otherwise the Keras cache if it exists
  and loads; otherwise the scikit-learn digits.
- "mnist": the named file, or the Keras cache; an error if neither works.
- "sklearn": the scikit-learn digits.

An MNIST file is a NumPy `.npz` archive with the arrays `x_train`
(N, H, W) or (N, H, W, 1), `y_train` (N,), `x_test` and `y_test`, the layout
of the file Keras caches. It is read with `numpy.load` (no pickles), and
checked: the four arrays present, image and label counts that agree, the
same image size in both splits, labels that are integers 0..9, pixel values
in [0, 255] (integers, or floats on either the 0..255 or the 0..1 scale).
Images come back as float32 in [0, 1] with a trailing channel axis; labels
as int64.

MNIST: Yann LeCun, Corinna Cortes, Christopher J. C. Burges; distributed by
the Keras and TensorFlow projects under the Creative Commons
Attribution-Share Alike 3.0 license.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile

import numpy as np

SOURCES = ("auto", "mnist", "sklearn")
SKLEARN_SOURCE = "scikit-learn bundled digits (load_digits)"
MNIST_NAME = "MNIST"
SKLEARN_NAME = "sklearn-digits-8x8"
SKLEARN_TEST_SIZE = 450
SKLEARN_SPLIT_SEED = 0
_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The smallest digit images accepted: the experiments' encoder halves an
# image twice (two 2x2 poolings), which needs at least 4x4 pixels.
MIN_IMAGE_SIDE = 4


class DataError(ValueError):
    """No usable digit images: the message names each source tried and why it failed."""


@dataclasses.dataclass(frozen=True, eq=False)
class DigitImages:
    """Digit images split into a training and a test part.

    Attributes:
        x_train: (N, H, W, 1) float32 in [0, 1].
        y_train: (N,) int64 labels 0..9.
        x_test: (M, H, W, 1) float32 in [0, 1].
        y_test: (M,) int64 labels 0..9.
        name: "MNIST" or "sklearn-digits-8x8".
        source: the file that was read, or
            "scikit-learn bundled digits (load_digits)".
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str

    @property
    def image_shape(self):
        """(H, W, 1)."""
        return tuple(self.x_train.shape[1:])

    def split(self, which):
        """(images, labels) of "train" or "test"."""
        if which == "train":
            return self.x_train, self.y_train
        if which == "test":
            return self.x_test, self.y_test
        raise ValueError(f"split must be 'train' or 'test', got {which!r}")

    def require_digits(self, digits, purpose):
        """Raise a DataError naming the source unless both splits hold an
        image of at least one of `digits` (the digits `purpose` draws from)."""
        for split in ("train", "test"):
            _, labels = self.split(split)
            if not np.any(np.isin(labels, list(digits))):
                found = ", ".join(str(d) for d in np.unique(labels)) or "none"
                raise DataError(
                    f"{self.source}: the {split} split has no image of the digits "
                    f"{', '.join(str(d) for d in digits)} that {purpose} uses (its labels: {found})"
                )
        return self

    def describe(self):
        """One line: name, source, sizes."""
        height, width, _ = self.image_shape
        return (f"{self.name} ({height}x{width}, {len(self.y_train):,} train / "
                f"{len(self.y_test):,} test images) from {self.source}")


def keras_mnist_cache_path():
    """Where `keras.datasets.mnist.load_data()` keeps mnist.npz.

    `$KERAS_HOME/datasets/mnist.npz` when the KERAS_HOME environment variable
    is set, `~/.keras/datasets/mnist.npz` otherwise.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return os.path.expanduser(os.path.join(home, "datasets", "mnist.npz"))


def load_digit_images(source="auto", path=None):
    """Digit images from a local MNIST file or scikit-learn's bundled digits.

    Args:
        source: "auto" (default), "mnist" or "sklearn"; see the module
            docstring for the order in which files are tried.
        path: an MNIST .npz file to use (sources "auto" and "mnist").

    Returns:
        A `DigitImages`.

    Raises:
        DataError: when the requested images cannot be loaded; the message
            names every source that was tried and why it failed.
        ValueError: for an unknown `source`, or a `path` with "sklearn".
    """
    if source not in SOURCES:
        raise ValueError(f"unknown digit source {source!r}; expected one of {', '.join(SOURCES)}")
    if path is not None and source == "sklearn":
        raise ValueError("a file path applies to MNIST only; use source='auto' or 'mnist' with it")
    if source == "sklearn":
        try:
            return _load_sklearn()
        except DataError as error:
            raise DataError(f"no digit images: {SKLEARN_SOURCE}: {error}") from None
    if path is not None:
        path = os.fspath(path)
        try:
            return _load_npz(path)
        except DataError as error:
            raise DataError(f"MNIST file {path}: {error}") from None
    failures = []
    cache = keras_mnist_cache_path()
    if os.path.exists(cache):
        try:
            return _load_npz(cache)
        except DataError as error:
            failures.append(f"Keras cache {cache}: {error}")
    else:
        failures.append(f"Keras cache {cache}: not found")
    if source == "mnist":
        raise DataError("no MNIST images: no path given; " + "; ".join(failures))
    if failures and os.path.exists(cache):
        warnings.warn(f"{failures[-1]}; using scikit-learn's 8x8 digits instead", stacklevel=2)
    try:
        return _load_sklearn()
    except DataError as error:
        failures.append(f"{SKLEARN_SOURCE}: {error}")
    raise DataError("no digit images: " + "; ".join(failures))


# -- MNIST .npz ----------------------------------------------------------------
def _load_npz(path):
    if not os.path.exists(path):
        raise DataError("not found")
    if os.path.isdir(path):
        raise DataError("is a directory, not an .npz file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise DataError(f"cannot be opened ({error.strerror or error})") from None
    if not magic:
        raise DataError("is empty")
    if not magic.startswith(b"PK"):
        raise DataError("is not an .npz archive (no zip header)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"missing array(s) {', '.join(missing)} (found: "
                    f"{', '.join(archive.files) or 'none'}); expected {', '.join(_KEYS)}"
                )
            arrays = {key: archive[key] for key in _KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise DataError(f"cannot be read as an .npz archive ({type(error).__name__}: {error})") from None
    x_train, y_train = _check_split(arrays["x_train"], arrays["y_train"], "train")
    x_test, y_test = _check_split(arrays["x_test"], arrays["y_test"], "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"train images are {x_train.shape[1:3]} but test images are {x_test.shape[1:3]}"
        )
    return DigitImages(x_train, y_train, x_test, y_test, MNIST_NAME, os.path.abspath(path))


def _check_split(x, y, split):
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or min(x.shape) == 0:
        raise DataError(f"x_{split} must have shape (N, H, W) or (N, H, W, 1) with N, H, W > 0, "
                        f"got {x.shape}")
    if min(x.shape[1:]) < MIN_IMAGE_SIDE:
        raise DataError(f"x_{split} images are {x.shape[1]}x{x.shape[2]} pixels; digit images must "
                        f"be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"y_{split} must have shape ({len(x)},) to match x_{split}, got {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer)
            or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise DataError(f"y_{split} must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() > 9:
        raise DataError(f"y_{split} labels must be 0..9, found {y.min()}..{y.max()}")
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        scale = 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise DataError(f"x_{split} holds non-finite values")
        scale = 1.0 if x.max() <= 1.0 else 255.0
    else:
        raise DataError(f"x_{split} must be numeric, got dtype {x.dtype}")
    if x.min() < 0 or x.max() > 255:
        raise DataError(f"x_{split} pixel values must lie in [0, 255], found {x.min()}..{x.max()}")
    images = (x.astype(np.float32) / np.float32(scale))[..., None]
    return images, y.astype(np.int64)


# -- scikit-learn digits --------------------------------------------------------
def _load_sklearn():
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise DataError(f"scikit-learn is not installed ({error})") from None
    digits = load_digits()
    images = (digits.images.astype(np.float32) / np.float32(16.0))[..., None]
    labels = digits.target.astype(np.int64)
    order = np.arange(len(labels))
    train, test = train_test_split(order, test_size=SKLEARN_TEST_SIZE, stratify=labels,
                                   random_state=SKLEARN_SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    return DigitImages(images[train], labels[train], images[test], labels[test],
                       SKLEARN_NAME, SKLEARN_SOURCE)
