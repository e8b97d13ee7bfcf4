"""`nalu-keras overview`, the README's main job: Fig. 1 and a many-seed
success table. The fast test runs it at toy size; the slow one at full size
checks the finding it exists to show."""

import csv

import pytest

from nalu_keras.lab import cli


def _run(tmp_path, capsys):
    assert cli.main(["overview", "--out", str(tmp_path), "--workers", "1"]) == 0
    return capsys.readouterr().out


def test_overview_at_toy_size(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cli.QUICK, "identity", dict(models=1, steps=50))
    monkeypatch.setattr(cli, "OVERVIEW_BENCH", dict(cli.OVERVIEW_BENCH, seeds=2, steps=200))
    out = _run(tmp_path, capsys)
    assert "== Fig. 1: MLPs on the identity ==" in out
    assert "== Success over 2 seeds, 200 steps each (95 % CI) ==" in out
    grid = out.split("(95 % CI) ==\n")[1].splitlines()
    assert grid[0].split() == ["unit", "a+b", "a-b", "a*b"]
    assert [line.split()[0] for line in grid[2:6]] == ["NALU", "NAC+", "NAU", "NMU"]
    for name in ("fig1.png", "bench_runs.csv", "bench_table.md", "bench_success.png"):
        assert (tmp_path / name).exists()
    with open(tmp_path / "bench_runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 3 * 2  # units × ops × seeds
    # rerunning the same command keeps the finished configurations
    again = _run(tmp_path, capsys)
    assert again.split("(95 % CI) ==\n")[1].splitlines()[:6] == grid[:6]


@pytest.mark.slow
def test_overview_shows_the_finding(tmp_path, capsys):
    out = _run(tmp_path, capsys)
    lines = {line.split()[0]: line for line in out.split("(95 % CI) ==\n")[1].splitlines()[2:6]}
    cells = {unit: line.split()[1::3] for unit, line in lines.items()}  # "k/n" per op: +, −, ×
    assert "20/20" not in cells["NALU"]
    assert cells["NAU"][:2] == ["20/20", "20/20"]
    assert cells["NMU"][2] == "20/20"
