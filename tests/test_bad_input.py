"""Bad input is a clean error: every command line below exits with status 2,
prints one `nalu-keras: error:` line (or argparse's usage error) naming the
argument or the file, and no traceback. Nothing here trains a model."""

import os

import numpy as np
import pytest

from nalu_keras.lab import cli
from nalu_keras.validation import MAX_STEPS

COMMANDS = ("identity", "static", "recurrent", "bench", "mnist", "language", "product", "reproduce")

# (value given, what the message must contain) for the options every command has
BAD_STEPS = [("0", "--steps"), ("-5", "--steps"), ("abc", "--steps"), ("1.5", "--steps"),
             ("99999999999999", "--steps"), (str(MAX_STEPS + 1), "--steps")]
BAD_SEEDS = [("0", "--seeds"), ("-3", "--seeds"), ("x", "--seeds")]
BAD_LR = [("0", "--lr"), ("-1e-3", "--lr"), ("inf", "--lr"), ("-inf", "--lr"), ("nan", "--lr"),
          ("1e400", "--lr"), ("abc", "--lr")]

COMMON = [
    pytest.param([command, option, value], expected, id=f"{command} {option} {value}")
    for command in COMMANDS
    for option, cases in (("--steps", BAD_STEPS), ("--seeds", BAD_SEEDS), ("--lr", BAD_LR))
    for value, expected in cases
]

SPECIFIC = [
    (["bench", "--units", "FOO"], "FOO"),
    (["bench", "--units", ","], "--units"),
    (["bench", "--ops", "pow"], "pow"),
    (["bench", "--ranges", "U[2,1]:U[2,6]"], "U[2,1]"),
    (["bench", "--ranges", "garbage"], "garbage"),
    (["bench", "--ranges", ";"], "--ranges"),
    (["bench", "--ranges", "U[1,1]:U[2,6]"], "U[1,1]"),
    (["bench", "--ranges", "U[1,inf]:U[2,6]"], "U[1,inf]"),
    (["bench", "--schedule", "fast2"], "fast2"),
    (["bench", "--suite", "x"], "--suite"),
    (["bench", "--suite", "primer", "--ops", "squared"], "squared"),
    (["bench", "--inputs", "0"], "--inputs"),
    (["bench", "--log-every", "0"], "--log-every"),
    (["bench", "--workers", "0"], "--workers"),
    (["bench", "--seed-group", "0"], "--seed-group"),
    (["bench", "--units", "NAU", "--ops", "add", "--seeds", "1", "--steps", "99999999999999"],
     "--steps"),
    (["bench", "--steps", "5000000", "--log-every", "1", "--seeds", "100"], "log_every"),
    (["static", "--ops", "pow"], "pow"),
    (["static", "--models", "FOO"], "FOO"),
    (["static", "--ranges", "U[1,2]"], "U[1,2]"),
    (["recurrent", "--ranges", "U[1,2]:nope"], "nope"),
    (["identity", "--models", "Nope"], "Nope"),
    (["mnist", "--tasks", "nope"], "nope"),
    (["mnist", "--models", "nope"], "nope"),
    (["mnist", "--lengths", "a,b"], "--lengths"),
    (["mnist", "--lengths", "0"], "lengths"),
    (["mnist", "--digits-source", "web"], "web"),
    (["mnist", "--state-init", "zero"], "zero"),
    (["mnist", "--batch-size", "0"], "--batch-size"),
    (["mnist", "--test-sequences", "0"], "--test-sequences"),
    (["language", "--models", "GRU"], "GRU"),
    (["language", "--targets", "all"], "all"),
    (["product", "--models", "GRU"], "GRU"),
    (["product", "--criterion", "mean"], "mean"),
    (["product", "--test-length", "0"], "--test-length"),
    (["product", "--digits-source", "sklearn", "--mnist-path", "x.npz"], "mnist"),
    (["nonsense"], "nonsense"),
]


def _write_npz(path, image_side=28, labels=None, count=20):
    labels = np.arange(count) % 10 if labels is None else labels
    images = np.zeros((count, image_side, image_side), np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images, y_test=labels)
    return str(path)


@pytest.fixture
def files(tmp_path):
    """Damaged inputs named by the file cases."""
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    return {
        "missing": str(tmp_path / "missing.npz"),
        "tiny": _write_npz(tmp_path / "tiny.npz", image_side=2),
        "zeros": _write_npz(tmp_path / "zeros.npz", labels=np.zeros(20, int)),
        "text": str(tmp_path / "text.npz"),
        "dir": str(tmp_path),
        "not_a_dir": str(not_a_dir),
    }


FILE_CASES = [
    (["mnist", "--mnist-path", "{missing}"], "missing.npz"),
    (["mnist", "--mnist-path", "{tiny}"], "tiny.npz"),
    (["mnist", "--mnist-path", "{text}"], "text.npz"),
    (["mnist", "--mnist-path", "{dir}"], "is a directory"),
    (["product", "--mnist-path", "{zeros}"], "zeros.npz"),
    (["product", "--mnist-path", "{tiny}"], "tiny.npz"),
    (["static", "--quick", "--out", "{not_a_dir}"], "a-file"),
    (["bench", "--quick", "--out", "{not_a_dir}"], "a-file"),
]


def _expect_clean_error(argv, expected, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as stop:  # argparse
        status = stop.code
    captured = capsys.readouterr()
    assert status == 2, (argv, captured.err)
    assert "Traceback" not in captured.err + captured.out
    assert expected in captured.err, (argv, captured.err)
    error_lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, captured.err


@pytest.mark.parametrize("argv, expected", COMMON + [pytest.param(a, e, id=" ".join(a)) for a, e in SPECIFIC])
def test_bad_command_line_is_a_one_line_error(argv, expected, capsys, tmp_path):
    _expect_clean_error(argv + ([] if argv[0] == "nonsense" else ["--out", str(tmp_path / "o")]),
                        expected, capsys)


@pytest.mark.parametrize("argv, expected", FILE_CASES, ids=[" ".join(a) for a, _ in FILE_CASES])
def test_bad_file_is_a_one_line_error_naming_it(argv, expected, files, capsys):
    with open(files["text"], "w") as handle:
        handle.write("not an archive")
    argv = [a.format(**files) for a in argv]
    _expect_clean_error(argv, expected, capsys)


def test_the_table_covers_every_command():
    assert {argv.values[0][0] for argv in COMMON} == set(COMMANDS)
    assert len(COMMON) + len(SPECIFIC) + len(FILE_CASES) >= 150


def test_bad_runs_leave_no_output_directory(tmp_path, capsys):
    # a bad argument is found before anything is created
    out = tmp_path / "never"
    _expect_clean_error(["bench", "--lr", "inf", "--out", str(out)], "--lr", capsys)
    assert not out.exists()
    assert not os.listdir(tmp_path)


# -- result files ----------------------------------------------------------------
jax_only = pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "jax") != "jax",
                              reason="the benchmark trainer needs JAX")
STORE = ["bench", "--units", "NAU", "--ops", "add", "--seeds", "2", "--steps", "200",
         "--log-every", "100"]


def _bench(out, capsys, extra=()):
    status = cli.main([*STORE, *extra, "--out", str(out)])
    captured = capsys.readouterr()
    return status, captured.err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny benchmark directory (copied by each test that damages it)."""
    out = tmp_path_factory.mktemp("store")
    assert cli.main([*STORE, "--out", str(out)]) == 0
    return out


def _copy(finished, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(finished, target)
    return target


def _text(path):
    return open(path, encoding="utf-8").read()


@jax_only
def test_deleted_rows_of_a_done_configuration_are_recomputed(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    os.remove(out / "bench_runs.csv")
    status, err = _bench(out, capsys)
    assert status == 0 and "Traceback" not in err
    assert "recorded as done" in err and "recomputing" in err
    # the same rows as the uninterrupted run, no more
    assert _text(out / "bench_runs.csv") == _text(finished / "bench_runs.csv")
    assert _text(out / "bench_curves.csv") == _text(finished / "bench_curves.csv")


@jax_only
def test_missing_curve_rows_of_a_done_configuration_are_recomputed(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    lines = _text(out / "bench_curves.csv").splitlines(keepends=True)
    (out / "bench_curves.csv").write_text("".join(lines[:-2]), encoding="utf-8")
    status, err = _bench(out, capsys)
    assert status == 0 and "curve rows" in err
    assert _text(out / "bench_curves.csv") == _text(finished / "bench_curves.csv")


@pytest.mark.parametrize("name, content, expected", [
    ("bench_thresholds.json", "{not json", "bench_thresholds.json"),
    ("bench_thresholds.json", '{"op=add": 3}', "malformed entry"),
    ("bench_thresholds.json", "[1, 2]", "JSON object"),
    ("bench_done.json", "", "bench_done.json"),
    ("bench_done.json", '{"done": [1, 2]}', "bench_done.json"),
    ("bench_runs.csv", b"\x80\x81\xfe\xff" * 50, "bench_runs.csv"),
])
def test_a_damaged_result_file_is_an_error_naming_it(finished, tmp_path, capsys, name, content,
                                                     expected):
    out = _copy(finished, tmp_path)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(out / name, mode) as handle:
        handle.write(content)
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    status, err = _bench(out, capsys)
    assert status == 2 and "Traceback" not in err
    assert expected in err
    assert "bench:" not in err  # refused before the run starts
    # nothing was changed (no NaN thresholds, no lost rows)
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


def test_damaged_threshold_cache_never_gives_nan_thresholds(tmp_path):
    from nalu_keras.lab.evaluation import success_threshold
    from nalu_keras.lab.experiments import benchmark
    from nalu_keras.lab.tasks import ArithmeticTask

    cache = tmp_path / benchmark.THRESHOLD_FILE
    cache.write_text("{not json", encoding="utf-8")
    config = benchmark.BenchConfig(units=("NAU",), ops=("add",), seeds=1, threshold_samples=1000)
    with pytest.raises(ValueError, match="bench_thresholds.json"):
        benchmark.threshold_for(config, "add", "U[2,6]", str(tmp_path))
    with pytest.raises(ValueError, match="threshold cache"):
        success_threshold(ArithmeticTask("add"), "U[2,6]", samples=1000, seed=7, cache_path=cache)
    # a range with no finite threshold is still NaN (no success), not an error
    assert np.isnan(benchmark.threshold_for(config, "root", "U[-6,-2]", str(tmp_path / "fresh")))


def test_ranges_keep_the_exact_floats_typed():
    from nalu_keras.lab.experiments import benchmark
    from nalu_keras.lab.tasks import ValueRange

    config = benchmark.BenchConfig(ranges=("U[1.23456789,2]:U[2,6]", "U[1,1.0000001]:U[2,6]"))
    assert config.ranges == ("U[1.23456789,2]:U[2,6]", "U[1,1.0000001]:U[2,6]")
    assert benchmark.parse_range_pair(config.ranges[1]) == ("U[1,1.0000001]", "U[2,6]")
    for text in ("U[1.23456789,2]", "U[1,1.0000001]", "U[-6,-2]∪U[2,6]", "U[0.1,0.2]",
                 "U[1e-30,3.000000000000001]"):
        value = ValueRange.parse(text)
        assert ValueRange.parse(str(value)) == value
    assert ValueRange.parse("U[1.23456789,2]").parts == ((1.23456789, 2.0),)
    assert str(ValueRange.parse("[2.0,6.00]")) == "U[2,6]"  # integers stay short


def test_results_files_get_the_users_permissions(tmp_path):
    from nalu_keras.lab._files import atomic_write

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.json") as handle:
            handle.write("{}")
        os.umask(0o007)
        with atomic_write(tmp_path / "b.json") as handle:
            handle.write("{}")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "b.json").st_mode & 0o777 == 0o660
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "a.json") as handle:
            handle.write("partial")
            raise RuntimeError
    assert _text(tmp_path / "a.json") == "{}"  # untouched
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]  # no temporary left


@jax_only
def test_benchmark_files_are_not_private(finished):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("bench_done.json", "bench_thresholds.json", "bench_runs.csv"):
        assert os.stat(finished / name).st_mode & 0o777 == 0o666 & ~umask, name


def test_library_refuses_step_counts_it_cannot_run():
    from nalu_keras.lab.experiments import benchmark

    with pytest.raises(ValueError, match="32-bit"):
        benchmark.BenchConfig(steps=99_999_999_999_999)
    with pytest.raises(ValueError, match="log less often"):
        benchmark.BenchConfig(steps=2_000_000_000, log_every=10)


@jax_only
def test_trainer_refuses_step_counts_before_allocating():
    from nalu_keras.lab.experiments import benchmark
    from nalu_keras.lab.training.vectorized import train_vectorized

    config = benchmark.BenchConfig(units=("NAU",), ops=("add",), seeds=1)
    build = benchmark.model_builder("NAU", config)
    with pytest.raises(ValueError, match="32-bit"):
        train_vectorized(build, config.task("add"), [0], 99_999_999_999_999)
    with pytest.raises(ValueError, match="log less often"):
        train_vectorized(build, config.task("add"), [0, 1], 2_000_000_000, log_every=1, workers=2,
                         seed_chunk=1)
