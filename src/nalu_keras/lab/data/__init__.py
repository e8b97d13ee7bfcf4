"""Data sets read from disk (pure numpy, no Keras): digit images and sequences of them."""

from nalu_keras.lab.data.mnist import (
    DataError,
    DigitImages,
    keras_mnist_cache_path,
    load_digit_images,
)
from nalu_keras.lab.data.sequences import (
    DigitSequences,
    count_digits,
    make_sequences,
    sample_sequences,
)

__all__ = [
    "DataError",
    "DigitImages",
    "DigitSequences",
    "count_digits",
    "keras_mnist_cache_path",
    "load_digit_images",
    "make_sequences",
    "sample_sequences",
]
