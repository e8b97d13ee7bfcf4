"""Number words, vocabulary and the paper's 169 / 200 / 631 split."""

import numpy as np
import pytest

from nalu_keras.lab.data import number_words as nw


@pytest.mark.parametrize("use_and", [False, True])
def test_round_trip_every_number_below_1000(use_and):
    for n in range(1000):
        text = nw.number_to_words(n, use_and=use_and)
        assert nw.words_to_number(text) == n, text


def test_round_trip_beyond_999_with_thousands():
    rng = np.random.default_rng(0)
    sample = list(rng.integers(1000, nw.MAX_NUMBER + 1, size=300)) + [
        1000, 1001, 1005, 1100, 1205, 20_000, 99_999, 100_000, 100_100, 777_777, nw.MAX_NUMBER]
    for use_and in (False, True):
        for n in sample:
            text = nw.number_to_words(int(n), use_and=use_and, thousands=True)
            assert nw.words_to_number(text) == n, text


def test_known_spellings():
    assert nw.number_to_words(0) == "zero"
    assert nw.number_to_words(13) == "thirteen"
    assert nw.number_to_words(40) == "forty"
    assert nw.number_to_words(100) == "one hundred"
    assert nw.number_to_words(723) == "seven hundred twenty three"
    assert nw.number_to_words(723, use_and=True) == "seven hundred and twenty three"
    assert nw.number_to_words(810, use_and=True) == "eight hundred and ten"
    assert nw.number_to_words(1205, use_and=True, thousands=True) == \
        "one thousand two hundred and five"
    assert nw.number_to_words(1005, use_and=True, thousands=True) == "one thousand and five"
    assert nw.number_to_words(1005, thousands=True) == "one thousand five"
    assert nw.number_to_words(12_000, thousands=True) == "twelve thousand"
    assert nw.words_to_number("Twenty-Three") == 23


@pytest.mark.parametrize("n", [-1, 1000, 10**6, 2.5, "5", True, None])
def test_number_to_words_rejects_out_of_range_and_non_integers(n):
    with pytest.raises(ValueError):
        nw.number_to_words(n)


def test_thousands_limit_is_documented_maximum():
    assert nw.number_to_words(np.int64(999)) == "nine hundred ninety nine"
    with pytest.raises(ValueError, match="thousands=True"):
        nw.number_to_words(1000)
    with pytest.raises(ValueError):
        nw.number_to_words(nw.MAX_NUMBER + 1, thousands=True)


@pytest.mark.parametrize("text", [
    "", "hundred", "and", "and five", "twenty twenty", "one zero", "zero zero",
    "ten hundred", "twenty hundred", "one hundred and", "five hundred hundred",
    "one thousand thousand", "thousand", "twelve and", "seven hundred and zero",
    "eleven one", "banana", "one hundred one hundred",
])
def test_words_to_number_rejects_invalid_text(text):
    with pytest.raises(ValueError):
        nw.words_to_number(text)


def test_words_to_number_rejects_non_strings():
    with pytest.raises(ValueError):
        nw.words_to_number(723)


def test_vocabulary_sizes_and_ids():
    vocab = nw.Vocabulary()
    assert vocab.size == 29 and vocab.input_dim == 30
    assert "and" not in vocab.tokens and "thousand" not in vocab.tokens
    assert nw.Vocabulary(use_and=True).size == 30
    assert nw.Vocabulary(thousands=True).size == 30
    assert nw.Vocabulary(use_and=True, thousands=True).size == 31
    # every token of 0..999 appears, and only those
    used = nw.tokens_used(range(1000), vocab)
    assert used == set(vocab.tokens)
    ids = vocab.encode("seven hundred twenty three")
    assert ids == [8, 29, 21, 4]
    assert nw.PAD_ID not in ids
    assert vocab.decode([0, 0] + ids) == "seven hundred twenty three"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("seven hundred and twenty three")
    with pytest.raises(ValueError):
        vocab.decode([30])
    with pytest.raises(ValueError):
        nw.Vocabulary(use_and="yes")


def test_encode_numbers_pads_in_front():
    vocab = nw.Vocabulary()
    batch = vocab.encode_numbers([5, 723, 40])
    assert batch.dtype == np.int32 and batch.shape == (3, 4)
    np.testing.assert_array_equal(batch[0], [0, 0, 0, 6])
    np.testing.assert_array_equal(batch[2], [0, 0, 0, 23])  # forty
    for row, n in zip(batch, [5, 723, 40]):
        assert nw.words_to_number(vocab.decode(row)) == n
    assert vocab.encode_numbers([5], length=6).shape == (1, 6)
    with pytest.raises(ValueError, match="more than length"):
        vocab.encode_numbers([723], length=2)
    assert vocab.max_length() == 4
    assert nw.Vocabulary(use_and=True).max_length() == 5


def test_prefix_values_are_running_numbers():
    assert nw.prefix_values("seven hundred and twenty three") == [7, 700, 700, 720, 723]
    assert nw.prefix_values("nineteen") == [19]
    assert nw.prefix_values("one thousand two hundred") == [1, 1000, 1002, 1200]
    vocab = nw.Vocabulary()
    targets, weights = vocab.prefix_targets([723, 5], length=5)
    np.testing.assert_array_equal(targets[0], [0, 7, 700, 720, 723])
    np.testing.assert_array_equal(weights[0], [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(weights[1], [0, 0, 0, 0, 1])
    for n in range(0, 1000, 7):
        assert nw.prefix_values(vocab.text(n))[-1] == n


@pytest.mark.parametrize("use_and", [False, True])
def test_split_has_the_papers_sizes_and_covers_every_token(use_and):
    train, validation, test = nw.split_numbers(seed=3, use_and=use_and)
    assert (len(train), len(validation), len(test)) == (169, 200, 631)
    assert not set(train) & set(validation)
    assert not set(train) & set(test)
    assert not set(validation) & set(test)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(1000))
    assert set(range(20)) <= set(train.tolist())
    vocab = nw.Vocabulary(use_and=use_and)
    assert nw.tokens_used(train, vocab) == set(vocab.tokens)


def test_split_is_seeded_and_deterministic():
    first = nw.split_numbers(seed=7)
    again = nw.split_numbers(seed=7)
    other = nw.split_numbers(seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    with pytest.raises(ValueError):
        nw.split_numbers(seed=0, max_tries=0)
