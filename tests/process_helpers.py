"""Running a real `seqmamba` process in tests and signalling it once it is under way."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out["OMP_NUM_THREADS"] = str(torch.get_num_threads())  # the same float sums as this process
    return out


def run_until(argv, cwd, ready, sig, timeout=300.0):
    """Start `seqmamba argv`; once ``ready()`` holds, send ``sig``; return (code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "seqmamba.pipelines.cli", *argv], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"finished before it could be signalled: {proc.communicate()}"
        assert ready(), "never got under way"
        proc.send_signal(sig)
        signalled = time.monotonic()
        _, err = proc.communicate(timeout=120)
        # Promptly: the stop itself takes well under a second; 30 s allows for a machine shared and busy.
        assert time.monotonic() - signalled < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def temporary_with_rows(folder: Path, name: str):
    def ready() -> bool:
        return any(p.stat().st_size > 0 for p in folder.glob(f".{name}.*.tmp"))
    return ready


def without_dac_override() -> list[str] | None:
    """A command prefix under which root obeys file permissions (Linux: drop CAP_DAC_*), if one works."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None
