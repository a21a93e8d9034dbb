"""How long the on-call commands take to answer, against a bare interpreter start in the same run.

    python bench/cli_startup.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str], cwd: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory(prefix="continuity-bench-") as tmp:
        cwd = Path(tmp)
        (cwd / "continuity.yaml").write_text((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
        cli = [sys.executable, "-m", "continuity"]
        base = timed([sys.executable, "-c", "pass"], cwd, runs)
        print(f"bare interpreter: {base * 1000:7.1f} ms (median of {runs})")
        for name, args in [("--help", ["--help"]), ("status", ["status"]), ("validate", ["validate"]),
                           ("outage --dry-run", ["outage", "phone", "--reason", "x", "--dry-run"])]:
            t = timed(cli + args, cwd, runs)
            print(f"continuity {name:<18} {t * 1000:7.1f} ms  ratio to bare interpreter {t / base:5.1f}")


if __name__ == "__main__":
    main()
