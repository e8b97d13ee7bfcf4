"""The `nalu-keras demo` command end to end on a tiny budget, and its errors."""

import csv
import os

import pytest

from nalu_keras.cli import main


def test_demo_writes_csv_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        ["demo", "--ops", "add", "--models", "NAC,ReLU6", "--seeds", "2",
         "--steps", "20", "--out", str(out)]
    )
    assert code == 0
    with open(out / "runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert {(r["model"], r["seed"]) for r in rows} == {
        ("NAC", "0"), ("NAC", "1"), ("ReLU6", "0"), ("ReLU6", "1")}
    assert {"interp_mse", "extrap_mse", "extrap_norm", "steps", "backend"} <= set(rows[0])
    assert "| add | NAC |" in (out / "summary.md").read_text()
    png = (out / "extrapolation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    printed = capsys.readouterr().out
    assert "extrap MSE" in printed and "NAC" in printed


def run_cli(argv):
    """Exit status of the command, whether it returns or exits (argparse)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--ops", "add,pow"], "unknown op 'pow'"),
        (["demo", "--models", "GRU"], "unknown model 'GRU'"),
        (["demo", "--steps", "0"], "positive integer"),
        (["demo", "--seeds", "-3"], "positive integer"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_nonzero_with_a_message(argv, message, capsys, tmp_path):
    if argv[0] == "demo":
        argv = argv + ["--out", str(tmp_path)]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was run or written


def test_unwritable_out_dir_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert run_cli(["demo", "--steps", "5", "--seeds", "1", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nalu-keras: error: cannot write to output directory")
