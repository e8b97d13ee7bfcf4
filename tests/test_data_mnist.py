"""Digit image loading (MNIST files, the Keras cache, scikit-learn digits) and sequence builders."""

import os
import warnings

import numpy as np
import pytest

from nalu_keras.lab.data import mnist as mnist_module
from nalu_keras.lab.data.mnist import (
    SKLEARN_NAME,
    SKLEARN_SOURCE,
    DataError,
    DigitImages,
    keras_mnist_cache_path,
    load_digit_images,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_mnist():
    """The real MNIST file if this machine has one (env NALU_KERAS_MNIST or ../shared/data)."""
    for candidate in (os.environ.get("NALU_KERAS_MNIST"),
                      os.path.join(REPO, "..", "shared", "data", "mnist.npz")):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def fake_mnist(path, n_train=30, n_test=20, size=6, seed=0, **replace):
    """A tiny MNIST-layout .npz: uint8 images, labels 0..9."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "y_test": (np.arange(n_test) * 3) % 10,
    }
    arrays.update(replace)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty KERAS_HOME, so the real user cache never interferes."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def put_in_cache(home, **kwargs):
    (home / "datasets").mkdir(exist_ok=True)
    return fake_mnist(home / "datasets" / "mnist.npz", **kwargs)


# -- the Keras cache path --------------------------------------------------------
def test_cache_path_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_mnist_cache_path() == os.path.join(str(tmp_path), "datasets", "mnist.npz")
    monkeypatch.delenv("KERAS_HOME")
    assert keras_mnist_cache_path() == os.path.expanduser(
        os.path.join("~", ".keras", "datasets", "mnist.npz"))


# -- a named file ----------------------------------------------------------------
def test_named_file_is_loaded_and_normalized(tmp_path, keras_home):
    path = fake_mnist(tmp_path / "digits.npz")
    with np.load(path) as raw:
        x_train, y_test = raw["x_train"], raw["y_test"]
    for source in ("auto", "mnist"):
        images = load_digit_images(source, path=path)
        assert isinstance(images, DigitImages)
        assert images.name == "MNIST"
        assert images.source == os.path.abspath(path)
        assert images.x_train.shape == (30, 6, 6, 1) and images.x_test.shape == (20, 6, 6, 1)
        assert images.x_train.dtype == np.float32 and images.y_train.dtype == np.int64
        np.testing.assert_allclose(images.x_train[..., 0], x_train / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(images.y_test, y_test)
        assert 0.0 <= images.x_test.min() and images.x_test.max() <= 1.0
        assert images.image_shape == (6, 6, 1)
        assert "MNIST (6x6, 30 train / 20 test images)" in images.describe()


def test_channel_axis_and_float_pixels_are_accepted(tmp_path, keras_home):
    rng = np.random.default_rng(1)
    unit = rng.random((20, 5, 5, 1)).astype(np.float32)
    path = fake_mnist(tmp_path / "a.npz", n_test=20, size=5,
                      x_train=rng.random((30, 5, 5, 1)) * 255.0, x_test=unit)
    images = load_digit_images(path=path)
    np.testing.assert_allclose(images.x_test, unit)  # already on the 0..1 scale: unchanged
    assert images.x_train.max() <= 1.0 and images.x_train.max() > 0.9


def test_named_file_failure_is_an_error_not_a_fallback(tmp_path, keras_home):
    put_in_cache(keras_home)  # a working cache must not be used instead
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match=r"MNIST file .*nope\.npz: not found"):
        load_digit_images("auto", path=missing)
    with pytest.raises(DataError, match="not found"):
        load_digit_images("mnist", path=missing)


@pytest.mark.parametrize("problem, make, message", [
    ("empty", lambda p: p.write_bytes(b""), "is empty"),
    ("text", lambda p: p.write_text("x_train,y_train\n1,2\n"), "not an .npz archive"),
    ("truncated", None, "cannot be read"),
    ("wrong keys", lambda p: np.savez(p, images=np.zeros((3, 4, 4)), labels=np.zeros(3)),
     r"missing array\(s\) x_train, y_train, x_test, y_test \(found: images, labels\)"),
    ("one key missing", lambda p: fake_mnist(p, y_test=None), r"missing array\(s\) y_test"),
    ("label count", lambda p: fake_mnist(p, y_train=np.zeros(29, int)), r"y_train must have shape \(30,\)"),
    ("label range", lambda p: fake_mnist(p, y_test=np.full(20, 10)), r"labels must be 0..9, found 10..10"),
    ("negative label", lambda p: fake_mnist(p, y_train=np.full(30, -1)), "labels must be 0..9"),
    ("float labels", lambda p: fake_mnist(p, y_train=np.full(30, 0.5)), "integer labels"),
    ("image rank", lambda p: fake_mnist(p, x_train=np.zeros((30, 36), np.uint8)), r"x_train must have shape"),
    ("size mismatch", lambda p: fake_mnist(p, x_test=np.zeros((20, 7, 7), np.uint8)), "train images are"),
    ("pixel range", lambda p: fake_mnist(p, x_test=np.full((20, 6, 6), 300.0)), r"\[0, 255\]"),
    ("nan pixels", lambda p: fake_mnist(p, x_test=np.full((20, 6, 6), np.nan)), "non-finite"),
    ("object arrays", lambda p: fake_mnist(p, y_test=np.array([None] * 20, dtype=object)), "cannot be read"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, keras_home, problem, make, message):
    path = tmp_path / "bad.npz"
    if make is None:  # a valid archive cut in half
        fake_mnist(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        make(path)
    with pytest.raises(DataError, match=message) as caught:
        load_digit_images(path=str(path))
    assert str(path) in str(caught.value)


def test_directory_is_rejected(tmp_path, keras_home):
    with pytest.raises(DataError, match="is a directory"):
        load_digit_images(path=tmp_path)


# -- the Keras cache and the fallback ---------------------------------------------
def test_auto_uses_the_keras_cache_when_present(keras_home):
    cache = put_in_cache(keras_home, n_train=40)
    images = load_digit_images()
    assert images.name == "MNIST" and images.source == os.path.abspath(cache)
    assert len(images.y_train) == 40
    assert load_digit_images("mnist").source == images.source


def test_auto_falls_back_to_sklearn_without_a_cache(keras_home):
    images = load_digit_images()
    assert images.name == SKLEARN_NAME and images.source == SKLEARN_SOURCE


def test_auto_falls_back_with_a_warning_when_the_cache_is_corrupt(keras_home):
    (keras_home / "datasets").mkdir()
    (keras_home / "datasets" / "mnist.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.warns(UserWarning, match="Keras cache .*cannot be read"):
        images = load_digit_images()
    assert images.name == SKLEARN_NAME
    with pytest.raises(DataError, match="Keras cache .*cannot be read"):
        load_digit_images("mnist")


def test_mnist_source_without_any_file_names_what_was_tried(keras_home):
    with pytest.raises(DataError) as caught:
        load_digit_images("mnist")
    text = str(caught.value)
    assert "no path given" in text
    assert keras_mnist_cache_path() in text and "not found" in text


def test_error_lists_every_source_when_all_fail(keras_home, monkeypatch):
    def broken():
        raise DataError("scikit-learn is not installed (test)")

    monkeypatch.setattr(mnist_module, "_load_sklearn", broken)
    with pytest.raises(DataError) as caught:
        load_digit_images()
    text = str(caught.value)
    assert f"Keras cache {keras_mnist_cache_path()}: not found" in text
    assert f"{SKLEARN_SOURCE}: scikit-learn is not installed" in text


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown digit source 'emnist'"):
        load_digit_images("emnist")
    with pytest.raises(ValueError, match="MNIST only"):
        load_digit_images("sklearn", path=tmp_path / "x.npz")


# -- scikit-learn digits ------------------------------------------------------------
def test_sklearn_digits_split_is_fixed_stratified_and_disjoint(keras_home):
    put_in_cache(keras_home)  # "sklearn" ignores the cache
    first = load_digit_images("sklearn")
    second = load_digit_images("sklearn")
    assert first.name == SKLEARN_NAME and first.source == SKLEARN_SOURCE
    assert first.x_train.shape == (1347, 8, 8, 1) and first.x_test.shape == (450, 8, 8, 1)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int64
    assert first.x_train.min() == 0.0 and first.x_train.max() == 1.0
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    # Stratified: every class in both parts, in about the overall proportion.
    counts = np.bincount(first.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47
    # A partition of the 1,797 bundled images: train + test is the whole set, each image once.
    from sklearn.datasets import load_digits

    everything = load_digits().images.reshape(1797, -1) / 16.0
    together = np.concatenate([first.x_train, first.x_test]).reshape(1797, -1).astype(np.float64)
    by_rows = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(by_rows(together), by_rows(everything))


def test_split_accessor():
    images = load_digit_images("sklearn")
    assert images.split("train")[0] is images.x_train
    assert images.split("test")[1] is images.y_test
    with pytest.raises(ValueError, match="'train' or 'test'"):
        images.split("validation")


# -- the real MNIST, where this machine has it -----------------------------------------
@pytest.mark.skipif(shared_mnist() is None, reason="no local MNIST file (NALU_KERAS_MNIST)")
def test_real_mnist_file():
    images = load_digit_images("mnist", path=shared_mnist())
    assert images.name == "MNIST"
    assert images.x_train.shape == (60000, 28, 28, 1) and images.x_test.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(images.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    assert images.x_train.max() == 1.0 and images.x_train.min() == 0.0
    assert set(np.unique(images.y_test)) == set(range(10))


# -- sequences of digit images ----------------------------------------------------------
from nalu_keras.lab.data import DigitSequences, count_digits, make_sequences, sample_sequences  # noqa: E402


def unique_images(tmp_path):
    """A fake MNIST whose 50 images are all different (image k holds the value k)."""
    x_train = np.repeat(np.arange(30, dtype=np.uint8)[:, None, None], 4, 1).repeat(4, 2)
    x_test = np.repeat(np.arange(100, 120, dtype=np.uint8)[:, None, None], 4, 1).repeat(4, 2)
    path = fake_mnist(tmp_path / "u.npz", x_train=x_train, x_test=x_test, size=4)
    return load_digit_images(path=path)


def test_sequence_labels_match_the_digits_of_the_images(tmp_path):
    images = unique_images(tmp_path)
    for split in ("train", "test"):
        seqs = make_sequences(images, split, n=40, length=7, seed=3)
        x, y = images.split(split)
        assert seqs.indices.shape == (40, 7) and seqs.indices.dtype == np.int64 and len(seqs) == 40
        assert seqs.split == split and seqs.length == 7
        np.testing.assert_array_equal(seqs.digits, y[seqs.indices])
        np.testing.assert_array_equal(seqs.images(images), x[seqs.indices])
        np.testing.assert_array_equal(seqs.images(x), x[seqs.indices])


def test_targets_follow_from_the_digits():
    labels = np.array([3, 0, 7, 7, 1, 9, 2])
    seqs = DigitSequences(np.array([[0, 2, 3, 6], [5, 5, 1, 4]]),
                          labels[np.array([[0, 2, 3, 6], [5, 5, 1, 4]])], "train")
    np.testing.assert_array_equal(seqs.digits, [[3, 7, 7, 2], [9, 9, 0, 1]])
    counts = np.zeros((2, 10), int)
    counts[0, [3, 7, 2]] = [1, 2, 1]
    counts[1, [9, 0, 1]] = [2, 1, 1]
    np.testing.assert_array_equal(seqs.counts(), counts)
    np.testing.assert_array_equal(seqs.targets("counting"), counts)
    np.testing.assert_array_equal(seqs.targets("addition"), [19, 19])
    np.testing.assert_array_equal(seqs.targets("parity"), [1, 1])
    np.testing.assert_array_equal(seqs.running_sum(), [[3, 10, 17, 19], [9, 18, 18, 19]])
    np.testing.assert_array_equal(seqs.running_product(), [[3, 21, 147, 294], [9, 81, 0, 0]])
    assert seqs.running_sum().dtype == np.float64 and seqs.running_product().dtype == np.float64
    np.testing.assert_array_equal(seqs.subset([1]).digits, [[9, 9, 0, 1]])
    with pytest.raises(ValueError, match="unknown task 'product'"):
        seqs.targets("product")


def test_counts_sum_to_length_and_match_a_direct_count():
    seqs = sample_sequences(np.arange(100) % 10, n=25, length=13, seed=0)
    counts = count_digits(seqs.digits)
    assert (counts.sum(axis=1) == 13).all()
    for row, digits in zip(counts, seqs.digits):
        np.testing.assert_array_equal(row, [np.sum(digits == d) for d in range(10)])
    np.testing.assert_array_equal(seqs.parity(), seqs.sums() % 2)


def test_running_product_overflows_to_inf_without_warning():
    seqs = sample_sequences(np.full(5, 9), n=2, length=400, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        product = seqs.running_product()
    assert product[0, 10] == 9.0 ** 11 and np.isinf(product[0, -1])


def test_sequences_are_deterministic_under_a_seed(tmp_path):
    images = unique_images(tmp_path)
    a = make_sequences(images, "train", 20, 10, seed=[7, 1])
    b = make_sequences(images, "train", 20, 10, seed=[7, 1])
    c = make_sequences(images, "train", 20, 10, seed=[7, 2])
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_train_and_test_sequences_use_their_own_split_only(tmp_path):
    images = unique_images(tmp_path)
    train = make_sequences(images, "train", 200, 10, seed=0)
    test = make_sequences(images, "test", 200, 10, seed=0)
    assert train.indices.max() < len(images.y_train) and test.indices.max() < len(images.y_test)
    # Pixel values identify images: train images hold 0..29, test images 100..119.
    pixel = lambda seqs: set(np.rint(seqs.images(images)[..., 0, 0, 0] * 255).astype(int).ravel())  # noqa: E731
    assert pixel(train) == set(range(30))  # every training image, nothing else
    assert pixel(test) == set(range(100, 120))


def test_digit_filter_is_respected(tmp_path):
    images = unique_images(tmp_path)
    seqs = make_sequences(images, "train", 100, 10, seed=1, digits=range(1, 10))
    assert seqs.digits.min() >= 1
    assert set(np.unique(seqs.digits)) == set(range(1, 10))
    only = make_sequences(images, "test", 50, 5, seed=1, digits=[4])
    assert (only.digits == 4).all()
    np.testing.assert_array_equal(images.y_test[only.indices], only.digits)


def test_sequence_argument_errors(tmp_path):
    images = unique_images(tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        make_sequences(images, "valid", 1, 1, seed=0)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        make_sequences(images, "train", 1, 0, seed=0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_sequences([1, 2], 2.5, 3, seed=0)
    with pytest.raises(ValueError, match="digits must be integers 0..9"):
        make_sequences(images, "train", 1, 1, seed=0, digits=[10])
    with pytest.raises(ValueError, match="at least one digit"):
        make_sequences(images, "train", 1, 1, seed=0, digits=[])
    with pytest.raises(ValueError, match="no image with a digit in"):
        sample_sequences([1, 2, 3], 1, 1, seed=0, digits=[5])
    with pytest.raises(ValueError, match="shape"):
        DigitSequences(np.zeros((2, 3), int), np.zeros((2, 4), int), "train")
