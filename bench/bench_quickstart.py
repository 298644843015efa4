"""Wall time and peak memory of `python main.py run scenarios/quickstart.yaml`, from the
command to the summary, measured as a child process (what a user waits for).

The baseline in the same run is the bare start-up (`python -c "import main, environment.world"`:
interpreter, torch-free imports), so the ratio says how much of the wait is the simulation.

    python bench/bench_quickstart.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    py = sys.executable
    base = [timed([py, "-c", "import main, environment.world"])[0] for _ in range(args.repeat)]
    runs, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            db = Path(tmp) / f"q{k}.db"
            wall, peak = timed(
                [py, "main.py", "run", "scenarios/quickstart.yaml", "--quiet", "--db", str(db)]
            )
            runs.append(wall)
            peaks.append(peak)
    print(
        f"quickstart (300 users, 2 domains x 200 items, 15 steps, TFCDSRS + CF), {args.repeat} runs"
    )
    print(
        f"  wall time      median {statistics.median(runs):6.2f} s   (min {min(runs):.2f}, max {max(runs):.2f})"
    )
    print(f"  start-up only  median {statistics.median(base):6.2f} s")
    print(f"  ratio          {statistics.median(runs) / statistics.median(base):6.1f}x start-up")
    print(f"  peak memory    {max(peaks):6.0f} MiB (max RSS of the child processes)")
    print(f"  requirement    under 60 s: {'yes' if max(runs) < 60 else 'NO'}")


if __name__ == "__main__":
    main()
