"""How long the on-call commands take to answer, against a bare interpreter start in the same run.

    python bench/cli_startup.py [RUNS]

Each command is a fresh process with the shipped config. Two figures per command, both medians of RUNS: the
CPU seconds the process used (user + system, from the kernel's accounting of finished children) and the
wall seconds. On a shared machine the wall time swings with other work; the CPU time is what the command
takes from the machine, and the ratio to a bare interpreter's CPU time is the one to compare.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """(median CPU seconds, median wall seconds) of `runs` runs of `args`."""
    cpu, wall = [], []
    for _ in range(runs):
        c0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        wall.append(time.perf_counter() - t0)
        cpu.append(_children_cpu() - c0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory(prefix="continuity-bench-") as tmp:
        cwd = Path(tmp)
        (cwd / "continuity.yaml").write_text((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
        cli = [sys.executable, "-m", "continuity"]
        base_cpu, base_wall = timed([sys.executable, "-c", "pass"], cwd, runs)
        print(f"bare interpreter: cpu {base_cpu * 1000:7.1f} ms, wall {base_wall * 1000:7.1f} ms (median of {runs})")
        for name, args in [("--help", ["--help"]), ("status", ["status"]), ("validate", ["validate"]),
                           ("outage --dry-run", ["outage", "phone", "--reason", "x", "--dry-run"])]:
            cpu, wall = timed(cli + args, cwd, runs)
            print(f"continuity {name:<18} cpu {cpu * 1000:7.1f} ms  ratio {cpu / base_cpu:5.1f}   "
                  f"wall {wall * 1000:7.1f} ms  ratio {wall / base_wall:5.1f}")


if __name__ == "__main__":
    main()
