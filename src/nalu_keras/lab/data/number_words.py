"""English number words for the language-to-number task (Table 3 of the NALU paper).

Numbers are written the British way, optionally with "and" after "hundred":

    >>> number_to_words(723)
    'seven hundred twenty three'
    >>> number_to_words(723, use_and=True)
    'seven hundred and twenty three'
    >>> number_to_words(1205, thousands=True, use_and=True)
    'one thousand two hundred and five'
    >>> words_to_number("seven hundred and twenty three")
    723

The vocabulary. The paper counts 29 tokens for the numbers 0..999:
"zero" .. "nineteen" (20), "twenty" .. "ninety" (8) and "hundred" (1). Its
example sentence, "seven hundred and twenty three", also contains "and",
which would make 30; the stated count only fits a vocabulary without it.
So the default here is `use_and=False` (29 tokens, the paper's count), and
`use_and=True` adds "and" (30 tokens). `thousands=True` adds "thousand" for
numbers beyond 999 (up to `MAX_NUMBER` = 999,999), used only to probe
extrapolation: the paper's data never contain it.

Token ids: 0 is padding (`PAD_ID`), the tokens are 1..size in the order of
`Vocabulary.tokens` (zero .. nineteen, twenty .. ninety, hundred, then
"thousand" and "and" when enabled).

The split (`split_numbers`): the paper's sizes, train 169 / validation 200
/ test 631 over 0..999; the training set holds 0..19 and 149 numbers drawn
at random from 20..999, redrawn until the training sentences use every token
of the vocabulary; the other 831 numbers are shuffled into validation and
test. Everything is seeded and deterministic.
"""

from __future__ import annotations

import numbers

import numpy as np

ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
HUNDRED = "hundred"
THOUSAND = "thousand"
AND = "and"

PAD_ID = 0
MAX_BASIC = 999
MAX_NUMBER = 999_999

TRAIN_SIZE = 169
VALIDATION_SIZE = 200
TEST_SIZE = 631

_ONE_VALUE = {word: value for value, word in enumerate(ONES)}
_TENS_VALUE = {word: 20 + 10 * k for k, word in enumerate(TENS)}


def _check_number(n, thousands):
    limit = MAX_NUMBER if thousands else MAX_BASIC
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise ValueError(f"expected an integer, got {n!r}")
    if not 0 <= n <= limit:
        hint = "" if thousands else " (pass thousands=True for numbers up to 999,999)"
        raise ValueError(f"number {n} is outside 0..{limit:,}{hint}")
    return int(n)


def _below_hundred(n):
    if n < 20:
        return [ONES[n]]
    tens, ones = divmod(n, 10)
    return [TENS[tens - 2]] + ([ONES[ones]] if ones else [])


def _group(n, use_and):
    """Words of 1..999."""
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words += [ONES[hundreds], HUNDRED]
        if rest and use_and:
            words.append(AND)
    if rest:
        words += _below_hundred(rest)
    return words


def number_to_word_list(n, use_and=False, thousands=False):
    """The words of `n` as a list (see `number_to_words`)."""
    n = _check_number(n, thousands)
    if n == 0:
        return [ONES[0]]
    high, low = divmod(n, 1000)
    words = []
    if high:
        words += _group(high, use_and) + [THOUSAND]
        if low and low < 100 and use_and:
            words.append(AND)  # "one thousand and five"
    if low:
        words += _group(low, use_and)
    return words


def number_to_words(n, use_and=False, thousands=False):
    """English words for an integer.

    Args:
        n: an integer in 0..999, or in 0..999,999 with `thousands=True`.
        use_and: write "and" after "hundred" when tens or ones follow
            ("seven hundred and twenty three"), and after "thousand" before
            a number below 100 ("one thousand and five"). Default False: the
            paper's 29-token vocabulary has no "and".
        thousands: allow numbers beyond 999 ("twelve thousand three hundred
            forty five"), up to `MAX_NUMBER`.

    Returns:
        The words joined by single spaces, lower case.

    Raises:
        ValueError: `n` is not an integer or out of range.
    """
    return " ".join(number_to_word_list(n, use_and=use_and, thousands=thousands))


def tokenize(text):
    """Lower-case words of `text`; hyphens count as spaces ("twenty-three")."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string of number words, got {text!r}")
    return text.lower().replace("-", " ").split()


class _Parser:
    """A strict reader of the words `number_to_words` writes (with or without "and")."""

    def __init__(self, words, text):
        self.words = words
        self.text = text
        self.i = 0

    def peek(self):
        return self.words[self.i] if self.i < len(self.words) else None

    def fail(self, why):
        raise ValueError(f"not a valid number: {self.text!r} ({why})")

    def below_hundred(self):
        """1..99, or None if the next word does not start one."""
        word = self.peek()
        if word in _ONE_VALUE and word != ONES[0]:
            self.i += 1
            return _ONE_VALUE[word]
        if word in _TENS_VALUE:
            self.i += 1
            value = _TENS_VALUE[word]
            nxt = self.peek()
            if nxt in _ONE_VALUE and 1 <= _ONE_VALUE[nxt] <= 9:
                self.i += 1
                value += _ONE_VALUE[nxt]
            return value
        return None

    def group(self):
        """1..999, or None if the next word does not start one."""
        start = self.i
        value = self.below_hundred()
        if value is None:
            return None
        if self.peek() == HUNDRED:
            if not (start + 1 == self.i and 1 <= value <= 9):
                self.fail(f"'{HUNDRED}' must follow one of one .. nine")
            self.i += 1
            value *= 100
            if self.peek() == AND:
                self.i += 1
                rest = self.below_hundred()
                if rest is None:
                    self.fail(f"'{AND}' must be followed by a number below 100")
                return value + rest
            rest = self.below_hundred()
            return value + (rest or 0)
        return value

    def number(self):
        if not self.words:
            self.fail("no words")
        if self.words == [ONES[0]]:
            return 0
        value = self.group()
        if value is None:
            self.fail(f"unexpected word {self.peek()!r}")
        if self.peek() == THOUSAND:
            self.i += 1
            value *= 1000
            if self.peek() == AND:
                self.i += 1
                rest = self.below_hundred()
                if rest is None:
                    self.fail(f"'{AND}' must be followed by a number below 100")
                value += rest
            elif self.peek() is not None:
                rest = self.group()
                if rest is None:
                    self.fail(f"unexpected word {self.peek()!r}")
                value += rest
        if self.peek() is not None:
            self.fail(f"unexpected word {self.peek()!r}")
        return value


def words_to_number(text):
    """The integer written by `text` (the inverse of `number_to_words`).

    Accepts the forms `number_to_words` writes, with or without "and",
    with "thousand" (up to 999,999), in any letter case, words separated by
    spaces or hyphens. Anything else ("hundred", "twenty twenty",
    "one zero", "and five", "ten hundred") raises ValueError.
    """
    return _Parser(tokenize(text), text).number()


def prefix_values(text):
    """The running value after each word of `text`: the number the words so
    far express. "seven hundred and twenty three" -> [7, 700, 700, 720, 723];
    "one thousand two hundred" -> [1, 1000, 1002, 1200]. These are the
    per-step targets of the language experiment's per-step variant.
    """
    words_to_number(text)  # validates
    total = current = 0
    values = []
    for word in tokenize(text):
        if word in _ONE_VALUE:
            current += _ONE_VALUE[word]
        elif word in _TENS_VALUE:
            current += _TENS_VALUE[word]
        elif word == HUNDRED:
            current *= 100
        elif word == THOUSAND:
            total += current * 1000
            current = 0
        values.append(total + current)
    return values


class Vocabulary:
    """The token ids of the number words.

    Args:
        use_and: include "and" (30 tokens instead of the paper's 29).
        thousands: include "thousand" (for numbers beyond 999).

    Attributes:
        tokens: the words, in id order (id = position + 1; 0 is padding).
        size: the number of tokens (29 by default), padding not counted.
        input_dim: size + 1, the `input_dim` of an Embedding over the ids.

    Example:

    >>> vocab = Vocabulary()
    >>> vocab.size
    29
    >>> vocab.encode("seven hundred twenty three")
    [8, 29, 21, 4]
    >>> vocab.encode_numbers([5, 723], length=4)   # padding in front
    array([[ 0,  0,  0,  6],
           [ 8, 29, 21,  4]], dtype=int32)
    """

    def __init__(self, use_and=False, thousands=False):
        for name, value in (("use_and", use_and), ("thousands", thousands)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        self.use_and = bool(use_and)
        self.thousands = bool(thousands)
        tokens = list(ONES) + list(TENS) + [HUNDRED]
        if self.thousands:
            tokens.append(THOUSAND)
        if self.use_and:
            tokens.append(AND)
        self.tokens = tuple(tokens)
        self._ids = {word: i + 1 for i, word in enumerate(self.tokens)}

    @property
    def size(self):
        return len(self.tokens)

    @property
    def input_dim(self):
        return self.size + 1

    def words(self, n):
        """The words of `n` in this vocabulary's style (a list)."""
        return number_to_word_list(n, use_and=self.use_and, thousands=self.thousands)

    def text(self, n):
        """The sentence of `n` in this vocabulary's style."""
        return " ".join(self.words(n))

    def encode(self, text):
        """Token ids of a sentence (a list of ints, no padding)."""
        ids = []
        for word in tokenize(text):
            if word not in self._ids:
                raise ValueError(
                    f"word {word!r} is not in the vocabulary "
                    f"({', '.join(self.tokens)})"
                )
            ids.append(self._ids[word])
        return ids

    def decode(self, ids):
        """The sentence of a sequence of ids; padding ids are skipped."""
        words = []
        for token_id in np.asarray(ids).reshape(-1).tolist():
            if token_id == PAD_ID:
                continue
            if not 1 <= token_id <= self.size:
                raise ValueError(f"token id {token_id} is outside 0..{self.size}")
            words.append(self.tokens[token_id - 1])
        return " ".join(words)

    def max_length(self, numbers_=None):
        """The longest sentence (in words) among `numbers_` (default: every
        number the vocabulary can write)."""
        if numbers_ is None:
            # 777 is among the longest below 1000; 777,777 above.
            numbers_ = [777_777] if self.thousands else [777]
        return max(len(self.words(int(n))) for n in numbers_)

    def encode_numbers(self, values, length=None):
        """Ids of the sentences of `values`, padded in front to `length`.

        Padding goes first so that the last column is every sentence's last
        word. `length` defaults to the longest sentence; a sentence longer
        than `length` raises ValueError.

        Returns:
            int32 array of shape `(len(values), length)`.
        """
        rows = [self.encode(self.text(int(v))) for v in np.asarray(values).reshape(-1)]
        longest = max((len(r) for r in rows), default=0)
        length = longest if length is None else int(length)
        if longest > length:
            raise ValueError(f"a sentence has {longest} words, more than length={length}")
        out = np.full((len(rows), length), PAD_ID, dtype=np.int32)
        for i, row in enumerate(rows):
            if row:
                out[i, length - len(row):] = row
        return out

    def prefix_targets(self, values, length=None):
        """Per-step targets aligned with `encode_numbers`: the running value
        after each word (`prefix_values`), and a 0/1 weight that is 0 on
        padding. Two float arrays of shape `(len(values), length)`."""
        texts = [self.text(int(v)) for v in np.asarray(values).reshape(-1)]
        runs = [prefix_values(t) for t in texts]
        longest = max((len(r) for r in runs), default=0)
        length = longest if length is None else int(length)
        if longest > length:
            raise ValueError(f"a sentence has {longest} words, more than length={length}")
        targets = np.zeros((len(runs), length), dtype=np.float64)
        weights = np.zeros((len(runs), length), dtype=np.float64)
        for i, run in enumerate(runs):
            if run:
                targets[i, length - len(run):] = run
                weights[i, length - len(run):] = 1.0
        return targets, weights


def tokens_used(values, vocabulary):
    """The set of words the sentences of `values` use."""
    used = set()
    for v in np.asarray(values).reshape(-1):
        used.update(vocabulary.words(int(v)))
    return used


def split_numbers(seed=0, use_and=False, max_tries=1000):
    """The paper's split of 0..999: (train, validation, test), sizes 169 / 200 / 631.

    Train holds 0..19 and 149 numbers drawn uniformly without replacement
    from 20..999; the draw is repeated (with the same generator) until the
    training sentences use every token of the 0..999 vocabulary (with "and"
    when `use_and`). The remaining 831 numbers are shuffled; the first 200
    are the validation set, the rest the test set.

    Args:
        seed: an int (or anything `numpy.random.default_rng` accepts).
        use_and: require "and" in the training sentences too.
        max_tries: give up (RuntimeError) after this many draws; a draw
            almost always covers every token, so this is a safeguard.

    Returns:
        Three sorted int64 arrays, disjoint, together 0..999.
    """
    if isinstance(max_tries, bool) or not isinstance(max_tries, numbers.Integral) or max_tries < 1:
        raise ValueError(f"max_tries must be a positive integer, got {max_tries!r}")
    vocabulary = Vocabulary(use_and=use_and)
    everything = set(vocabulary.tokens)
    rng = np.random.default_rng(seed)
    small = np.arange(20)
    pool = np.arange(20, MAX_BASIC + 1)
    for _ in range(int(max_tries)):
        drawn = rng.choice(pool, size=TRAIN_SIZE - len(small), replace=False)
        train = np.concatenate([small, drawn])
        if tokens_used(train, vocabulary) == everything:
            break
    else:
        raise RuntimeError(f"no draw in {max_tries} covered every token")
    rest = np.setdiff1d(np.arange(MAX_BASIC + 1), train)
    rest = rng.permutation(rest)
    validation = rest[:VALIDATION_SIZE]
    test = rest[VALIDATION_SIZE:]
    return (np.sort(train).astype(np.int64), np.sort(validation).astype(np.int64),
            np.sort(test).astype(np.int64))
