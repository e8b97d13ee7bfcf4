"""Ctrl-C ends `nalu-keras` and every process it started: exit status 130, one
line on stderr, no traceback, no crash, nothing left running, and the
finished configurations of a resumable run kept."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "jax") != "jax",
                                reason="the benchmark trainer needs JAX")


def _children(pid):
    """Every process whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_ends_every_process_quietly(tmp_path, workers):
    out = tmp_path / "out"
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "nalu_keras.lab.cli", "bench", "--units", "NAU", "--ops", "add",
               "--seeds", "4", "--steps", "2000000000", "--log-every", "1000000",
               "--workers", str(workers), "--out", str(out)]
    with open(log, "w") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
        # wait until training has started: the progress bar is on stderr and,
        # with workers, the worker processes exist
        while "bench:" not in log.read_text() or (workers > 1 and len(_children(process.pid)) < 2):
            assert process.poll() is None, log.read_text()
            time.sleep(0.5)
        time.sleep(0.5)
        workers_seen = [p for p in _children(process.pid) if _alive(p)]
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        status = process.wait()
    text = log.read_text()
    assert status == 130, text
    assert text.rstrip().endswith("nalu-keras: interrupted")
    for bad in ("Traceback", "terminate called", "Segmentation", "KeyboardInterrupt"):
        assert bad not in text
    deadline_checks = 50
    while any(_alive(p) for p in workers_seen) and deadline_checks:
        time.sleep(0.1)
        deadline_checks -= 1
    assert not any(_alive(p) for p in workers_seen)
