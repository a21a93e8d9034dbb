"""A cluster of daemons on one PostgreSQL store, in one run: the failover time after a SIGKILL of the leader,
the ledger's cost per step on PostgreSQL against SQLite, and what a second node costs on 1,000 probes a cycle.

    python bench/cluster.py [--kills 10] [--steps 200] [--rounds 3] [--probe-seconds 25]

1. Failover: two `continuity daemon --node` processes (tests/cluster/kit.py's Node) on a fresh database; the
   leader is SIGKILLed, started again at once (it comes back as a follower), and the time from the kill until
   the survivor's /healthz says "leader" is taken; median and max of `--kills` (goal: median <= 5 s).
2. Ledger: bench/ledger_overhead.py's engine part (an outage whose playbook has N immediate steps: plan into
   the ledger, claim, render, apply to the outbox, record) on a new SQLite file, on a fresh PostgreSQL database
   with fsync off (as the tests run it) and on one with fsync on, interleaved `--rounds` times; ms per step
   (median, wall) for each and the ratio PG/SQLite, next to the same steps written straight to the sink.
3. Probes: 20 channels x 50 http probes every 5 s against an aiohttp server (bench/probe_fanout.py's, which
   also counts the probes it answers; a process of its own, not counted); one node alone, then two, then one
   again, each for `--probe-seconds`; CPU % of each daemon from /proc/PID/stat (utime+stime), its RSS and its
   slowest /healthz, and the ratio leader-with-a-follower / leader-alone (the mean of before and after).

PostgreSQL is tests/store/pgserver.py's private server (initdb/pg_ctl in a temporary folder, as the postgres
user when run as root; fsync and synchronous_commit off, as in the tests), stopped when the bench exits.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ledger_overhead  # noqa: E402 (bench/ is this script's folder, first on sys.path)
import probe_fanout  # noqa: E402

from tests.cluster.kit import Hooks, Node, Peer, write_config  # noqa: E402
from tests.crashkit import free_port, wait_for  # noqa: E402
from tests.store.pgserver import drop_database, fresh_database, server  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CHANNELS, PER_CHANNEL, EVERY = 20, 50, "5s"


def leaders(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.running and n.role() == "leader"]


def failover(workdir: Path, kills: int) -> None:
    url = fresh_database()
    peer, hooks = Peer(), Hooks()
    peer.server.handle_error = lambda *_: None  # type: ignore[method-assign]  # a node killed mid-probe
    config = write_config(workdir, url, peer.port, free_port(), hooks.port)
    nodes = [Node(config, "alpha"), Node(config, "beta")]
    rng = random.Random(13)
    times: list[float] = []
    by_survivor = 0
    try:
        for n in nodes:
            n.start()
        wait_for(lambda: len(leaders(nodes)) == 1, 30, "a first leader")
        for kill in range(kills):
            wait_for(lambda: all(n.role() in ("leader", "follower") for n in nodes), 60,
                     f"both nodes serving before kill {kill + 1}")
            time.sleep(rng.uniform(0.3, 1.5))  # kills at different moments of the followers' 1 s poll
            (leader,) = wait_for(lambda: leaders(nodes), 20, f"a leader before kill {kill + 1}")
            survivor = next(n for n in nodes if n is not leader)
            leader.kill(signal.SIGKILL)
            killed = time.monotonic()
            leader.start()  # back at once, as a follower unless it is first to the lock
            new = wait_for(lambda: leaders(nodes), 20, f"a leader after kill {kill + 1}", every=0.02)
            times.append(time.monotonic() - killed)
            by_survivor += new[0] is survivor
    except AssertionError:
        for n in nodes:  # what the nodes said, for whoever reads a failed run
            print(f"--- {n.name} (running: {n.running}), last lines of its log:\n"
                  + "\n".join(n.log_text().splitlines()[-15:]), file=sys.stderr)
        raise
    finally:
        for n in nodes:
            if n.running:
                n.kill(signal.SIGTERM)
        peer.close()
        hooks.close()
        drop_database(url)
    median = statistics.median(times)
    print(f"failover after SIGKILL of the leader, 2 nodes, {len(times)} kills: median {median:.2f} s, "
          f"max {max(times):.2f} s (goal: median <= 5 s: {'MET' if median <= 5 else 'NOT MET'})")
    print(f"  per kill (s): {' '.join(f'{t:.2f}' for t in times)}; the survivor took over {by_survivor}"
          f"/{len(times)} times (else the restarted node won the lock first)")


FAST = "-c fsync=off -c synchronous_commit=off"  # how tests/store/pgserver.py runs the server


def durable(on: bool) -> None:
    """Restart the bench's server with fsync and synchronous_commit on (each COMMIT waits for the disk, as
    SQLite's does with synchronous=FULL) or off again, as the tests run it."""
    srv = server()
    wanted = srv.options.replace(FAST, "") if on else srv.options
    if on == (FAST not in srv.options):
        return
    srv.stop("fast")
    srv.options = wanted if on else srv.options + " " + FAST
    srv.start()


KINDS = {"sqlite": "sqlite file (WAL, synchronous=FULL)", "pg-fast": "postgresql, fsync off (as the tests)",
         "pg-durable": "postgresql, fsync on"}


def ledger(workdir: Path, steps: int, rounds: int) -> None:
    warm = workdir / "warm"
    warm.mkdir()
    ledger_overhead.through_engine(ledger_overhead.setup(warm, 1), db="warm.db")  # compiles the templates once
    per: dict[str, list[float]] = {k: [] for k in KINDS}
    ran = 0
    order = list(KINDS)
    try:
        for r in range(rounds):
            for kind in order[r % 3:] + order[:r % 3]:  # each kind first in one round: drift hits all alike
                folder = workdir / f"{kind}-{r}"
                folder.mkdir()
                url = None
                if kind != "sqlite":
                    durable(kind == "pg-durable")
                    url = fresh_database()
                try:
                    timed = ledger_overhead.through_engine(ledger_overhead.setup(folder, steps), store_url=url)
                    seconds, ran = timed[0], timed[-1]  # (wall, [cpu,] steps): wall time, as the server's is too
                finally:
                    if url:
                        drop_database(url)
                per[kind].append(seconds / ran * 1000)
    finally:
        durable(False)
    folder = workdir / "direct"
    folder.mkdir()
    timed = ledger_overhead.direct(ledger_overhead.setup(folder, steps), ran)
    direct_ms = (timed[0] if isinstance(timed, tuple) else timed) / ran * 1000  # wall seconds [, cpu]
    med = {k: statistics.median(v) for k, v in per.items()}
    print(f"ledger per step, {ran} steps through the engine, median of {rounds} (interleaved):")
    for kind, label in KINDS.items():
        print(f"  {label:<38} {med[kind]:6.2f} ms/step  (runs: {' '.join(f'{x:.2f}' for x in per[kind])})")
    print(f"  straight to the sink, no ledger: {direct_ms:.2f} ms/step; one write+fsync on this disk: "
          f"{ledger_overhead.fsync_cost(workdir) * 1000:.2f} ms")
    print(f"ratio postgresql/sqlite per step: {med['pg-durable'] / med['sqlite']:.2f} with fsync on both; "
          f"{med['pg-fast'] / med['sqlite']:.2f} with PostgreSQL's fsync off")


def probe_config(workdir: Path, url: str, base_url: str) -> Path:
    lines = ["organisation: {name: Cluster bench, default_locale: en, locales: [en]}",
             f"store: {{url: \"{url}\"}}", "channels:"]
    for c in range(CHANNELS):
        lines += [f"  c{c:02d}:", "    health:", f"      every: {EVERY}", "      probes:"]
        lines += [f"        - {{type: http, url: \"{base_url}/c{c:02d}/p{p:02d}\", timeout: 10s}}"
                  for p in range(PER_CHANNEL)]
    path = workdir / "continuity.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of proc(5))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# bench/probe_fanout.py's server (aiohttp in a process of its own, `200 ok` on every path), plus a count of
# the probes it answered, so that each phase shows how many probes the nodes really ran.
SERVER = """
import resource, sys
from aiohttp import web

answered = 0

async def ok(request):
    global answered
    answered += 1
    return web.Response(text="ok")

async def stats(request):
    r = resource.getrusage(resource.RUSAGE_SELF)
    return web.Response(text=f"{r.ru_utime + r.ru_stime:.6f} {answered}")

app = web.Application()
app.router.add_get("/_stats", stats)
app.router.add_route("*", "/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, backlog=4096)
"""


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = probe_fanout.free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server_stats(base_url, quiet=True), 15, "the aiohttp server")
    except AssertionError:
        proc.kill()
        raise
    return proc, base_url


def server_stats(base_url: str, quiet: bool = False) -> tuple[float, int] | None:
    """The probed server's CPU seconds and the probes it answered so far."""
    try:
        with urllib.request.urlopen(base_url + "/_stats", timeout=10) as r:
            cpu, answered = r.read().split()
    except OSError:
        if quiet:
            return None
        raise
    return float(cpu), int(answered)


def healthz(node: Node) -> tuple[float, str | None]:
    """Seconds /healthz took and the role it gave: a daemon busy with a cycle of 1,000 probes answers late,
    later than kit.Node.role()'s 2 s."""
    req = urllib.request.Request(f"http://127.0.0.1:{node.port}/healthz",
                                 headers={"Authorization": "Bearer cluster-t0ken"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            role = json.loads(r.read()).get("role")
    except urllib.error.HTTPError as err:
        with err:
            role = json.loads(err.read()).get("role")
    except OSError:
        role = None
    return time.monotonic() - t0, role


def epoch(url: str) -> int | None:
    """The lease's epoch: it grows by one each time the lead changes hands."""
    import psycopg
    from psycopg.rows import dict_row

    from continuity.store.pg_cluster import read_lease

    with psycopg.connect(url, row_factory=dict_row) as conn:
        lease = read_lease(conn)
    return None if lease is None else lease.epoch


def sample(nodes: list[Node], seconds: float, base_url: str) -> dict[str, tuple[float, float, float]]:
    """CPU % (of one core) over `seconds`, RSS at the end and the slowest /healthz (asked about every second
    during the window), per node; "server": the probed server's CPU % and the probes it answered a second."""
    pids = {n.name: n.proc.pid for n in nodes if n.proc is not None}
    c0, s0, w0 = {k: cpu_seconds(p) for k, p in pids.items()}, server_stats(base_url), time.monotonic()
    slowest = dict.fromkeys(pids, 0.0)
    while time.monotonic() - w0 < seconds:
        for n in nodes:
            slowest[n.name] = max(slowest[n.name], healthz(n)[0])
        time.sleep(max(0.0, min(1.0, seconds - (time.monotonic() - w0))))
    wall = time.monotonic() - w0
    out = {k: ((cpu_seconds(p) - c0[k]) / wall * 100, rss_mb(p), slowest[k]) for k, p in pids.items()}
    s1 = server_stats(base_url)
    assert s0 is not None and s1 is not None
    out["server"] = ((s1[0] - s0[0]) / wall * 100, (s1[1] - s0[1]) / wall, 0.0)
    return out


def probes(workdir: Path, seconds: float) -> None:
    """One node, two, then one again (the follower stopped): the leader alone is measured on both sides of
    the two-node phase, so that a loaded machine's drift shows instead of passing for the follower's cost."""
    srv, base_url = start_server()
    url = fresh_database()
    config = probe_config(workdir, url, base_url)
    alpha, beta = Node(config, "alpha"), Node(config, "beta")
    try:
        alpha.start()
        wait_for(lambda: healthz(alpha)[1] == "leader", 60, "the first node to lead")
        time.sleep(6)  # a first cycle (connections opened, imports done) before counting
        alone = sample([alpha], seconds, base_url)
        beta.start()
        wait_for(lambda: healthz(beta)[1] == "follower", 60, "the second node to follow")
        time.sleep(6)
        before = epoch(url)
        both = sample([alpha, beta], seconds, base_url)
        changes = (epoch(url) or 0) - (before or 0)
        roles = healthz(alpha)[1], healthz(beta)[1]
        beta.kill(signal.SIGTERM)
        time.sleep(5)
        again = sample([alpha], seconds, base_url)
    finally:
        for n in (alpha, beta):
            if n.running:
                n.kill(signal.SIGTERM)
        srv.terminate()
        srv.wait(10)
        drop_database(url)
    total = CHANNELS * PER_CHANNEL
    print(f"probes: {CHANNELS} channels x {PER_CHANNEL} = {total} http probes every {EVERY}, "
          f"{seconds:.0f} s per phase (CPU % of one core)")
    for label, row in (("1 node:  leader  ", alone["alpha"]), ("2 nodes: leader  ", both["alpha"]),
                       ("2 nodes: follower", both["beta"]), ("1 node again     ", again["alpha"])):
        print(f"  {label} CPU {row[0]:5.1f} %  RSS {row[1]:6.1f} MB  slowest /healthz {row[2]:.2f} s")
    print(f"  lead changed hands {changes} time(s) during the 2-node phase; roles at the end: alpha {roles[0]}, "
          f"beta {roles[1]}")
    print(f"  probes answered by the server a second (1,000 every 5 s = 200 a node): {alone['server'][1]:.0f} "
          f"with 1 node, {both['server'][1]:.0f} with 2, {again['server'][1]:.0f} with 1 again; its CPU "
          f"{alone['server'][0]:.1f} %, {both['server'][0]:.1f} %, {again['server'][0]:.1f} %")
    solo = (alone["alpha"][0] + again["alpha"][0]) / 2

    def per_1000(rows: list[tuple[float, float, float]], server: tuple[float, float, float]) -> float:
        """CPU seconds the nodes spent per 1,000 probes answered: not swayed by how many 5 s cycles fell in
        the window (5 or 6 in 25 s)."""
        return sum(r[0] for r in rows) / 100 / server[1] * 1000

    print(f"  CPU per 1,000 probes: {per_1000([alone['alpha']], alone['server']):.2f} s with 1 node, "
          f"{per_1000([both['alpha'], both['beta']], both['server']):.2f} s with 2 (both nodes' CPU over both's "
          f"probes), {per_1000([again['alpha']], again['server']):.2f} s with 1 again")
    print(f"ratio leader CPU with a follower / alone (mean of before and after): {both['alpha'][0] / solo:.2f}; "
          f"two nodes' CPU / one node's: {(both['alpha'][0] + both['beta'][0]) / solo:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200, help="extra immediate steps of the ledger's outage")
    parser.add_argument("--rounds", type=int, default=3, help="ledger runs per store, interleaved")
    parser.add_argument("--probe-seconds", type=float, default=25)
    args = parser.parse_args()
    started = time.monotonic()
    srv = server()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; PostgreSQL on 127.0.0.1:{srv.port} "
          f"({srv.bindir.parent.name}; fsync off but for the ledger's durable runs)")
    tmp = Path(tempfile.mkdtemp(prefix="continuity-bench-cluster-"))
    try:
        for name, part in (("failover", lambda d: failover(d, args.kills)),
                           ("ledger", lambda d: ledger(d, args.steps, args.rounds)),
                           ("probes", lambda d: probes(d, args.probe_seconds))):
            folder = tmp / name
            folder.mkdir()
            part(folder)
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bench time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
