"""Data sets read from disk (pure numpy, no Keras): digit images and sequences of them."""

from nalu_keras.data.mnist import (
    DataError,
    DigitImages,
    keras_mnist_cache_path,
    load_digit_images,
)

__all__ = [
    "DataError",
    "DigitImages",
    "keras_mnist_cache_path",
    "load_digit_images",
]
