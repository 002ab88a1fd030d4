#!/usr/bin/env python3
"""Run commands from several tools alternately and compare their wall time and peak RSS.

Every timed run is `/usr/bin/time -f %M bash -c CMD`: wall time is measured here around
that process (perf_counter, so it includes ~2 ms of time+bash start-up), peak RSS is GNU
time's %M (the largest resident set of the command or any descendant it waited for; for a
client/daemon tool such as docker this is the CLI only, not dockerd).

Per run: global --setup, the tool's setup, [--drop-caches], the timed command, the tool's
cleanup, global --cleanup, [--pause]. Setup and cleanup are not timed. Hooks and commands
run with bash -c and see BENCH_NAME, BENCH_TOOL, BENCH_RUN (0-based; negative for warm-up)
and BENCH_RESULTS (the run's result directory) in their environment.

Orders (--order):
  alternate  A B C A B C ...       (default; spreads drift and the ext4 inode-reuse effect)
  rotate     A B C, B C A, C A B   (also cancels "who goes first after a cleanup")
  grouped    A A A B B B C C C     (only with --pause, or for tools that do not touch disk)

Results: a table on stdout; bench/results/NAME-YYYYmmdd-HHMMSS/{result.json,result.md,
logs/} and a bench/results/NAME-latest symlink. Exit status 1 when a run failed.

Example:
  bench/lib/bench.py --name pull-big --runs 5 --baseline podman \\
    --tool podman='podman pull -q localhost:5000/library/big:latest' \\
    --cleanup-for podman='podman rmi -f localhost:5000/library/big:latest' \\
    --tool berth='target/release/berth pull localhost:5000/library/big:latest' \\
    --cleanup-for berth='target/release/berth rmi localhost:5000/library/big:latest' \\
    --note 'alternated, no pause'
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GNU_TIME = "/usr/bin/time"


def parse_kv(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"bench: {what} '{item}' is not NAME=VALUE")
        out[name] = value
    return out


def load_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("--name", help="benchmark name, used for the result directory")
    p.add_argument("--tool", action="append", default=[], metavar="NAME=CMD",
                   help="a tool and the command to time (repeat; order = run order)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("--warmup", type=int, default=0, help="untimed runs per tool first")
    p.add_argument("--baseline", help="tool the ratios are against (default: the first)")
    p.add_argument("--order", choices=["alternate", "rotate", "grouped"], default="alternate")
    p.add_argument("--prepare", help="run once before everything")
    p.add_argument("--finish", help="run once after everything (also after a failure)")
    p.add_argument("--setup", help="run before every run of every tool (untimed)")
    p.add_argument("--cleanup", help="run after every run of every tool (untimed)")
    p.add_argument("--setup-for", action="append", default=[], metavar="NAME=CMD")
    p.add_argument("--cleanup-for", action="append", default=[], metavar="NAME=CMD")
    p.add_argument("--version-for", action="append", default=[], metavar="NAME=CMD",
                   help="command printing the tool's version, recorded in the results")
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds to sleep after each run's cleanup (61 defeats ext4 inode reuse)")
    p.add_argument("--drop-caches", action="store_true",
                   help="sync and drop the page cache before each timed run (root)")
    p.add_argument("--keep-going", action="store_true", help="record failed runs and go on")
    p.add_argument("--note", default="", help="free text kept with the results")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment for every command")
    p.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--spec", metavar="FILE.json",
                   help="read options from JSON (keys as the long options, with _ for -; "
                        "tools as {\"name\": {\"cmd\", \"setup\", \"cleanup\", \"version\"}})")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--spec")
    known, _ = pre.parse_known_args(argv)
    if known.spec:
        # Spec values become defaults; options on the command line override them (and
        # append to the list options).
        spec = json.loads(Path(known.spec).read_text())
        defaults: dict = {"tool": [], "setup_for": [], "cleanup_for": [], "version_for": [], "env": []}
        valid = {act.dest for act in p._actions}
        for key, value in spec.items():
            if key == "tools":
                for name, t in value.items():
                    defaults["tool"].append(f"{name}={t['cmd']}")
                    for hook in ("setup", "cleanup", "version"):
                        if t.get(hook):
                            defaults[f"{hook}_for"].append(f"{name}={t[hook]}")
            elif key == "env":
                defaults["env"] += [f"{k}={v}" for k, v in value.items()]
            elif key.replace("-", "_") in valid:
                defaults[key.replace("-", "_")] = value
            else:
                sys.exit(f"bench: unknown key '{key}' in {known.spec}")
        p.set_defaults(**defaults)
    a = p.parse_args(argv)
    if not a.name:
        p.error("--name is required")
    if not a.tool:
        p.error("at least one --tool NAME=CMD is required")
    if a.runs < 1:
        p.error("--runs must be at least 1")
    return a


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.tools = parse_kv(a.tool, "--tool")
        self.names = list(self.tools)
        self.setup_for = parse_kv(a.setup_for, "--setup-for")
        self.cleanup_for = parse_kv(a.cleanup_for, "--cleanup-for")
        self.version_for = parse_kv(a.version_for, "--version-for")
        for what, d in (("--setup-for", self.setup_for), ("--cleanup-for", self.cleanup_for),
                        ("--version-for", self.version_for)):
            for n in d:
                if n not in self.tools:
                    sys.exit(f"bench: {what} names unknown tool '{n}' (tools: {', '.join(self.names)})")
        self.baseline = a.baseline or self.names[0]
        if self.baseline not in self.tools:
            sys.exit(f"bench: baseline '{self.baseline}' is not a tool ({', '.join(self.names)})")
        if not os.access(GNU_TIME, os.X_OK):
            sys.exit(f"bench: {GNU_TIME} missing; install the 'time' package (scripts/ci/install-deps.sh)")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = Path(a.results_dir) / f"{a.name}-{stamp}"
        (self.out / "logs").mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, BENCH_NAME=a.name, BENCH_RESULTS=str(self.out))
        self.env.update(parse_kv(a.env, "--env"))
        self.runs: dict[str, list[dict]] = {n: [] for n in self.names}
        self.failed = False

    def log(self, msg: str) -> None:
        if not self.a.quiet or msg.startswith(("error", "warning")):
            print(f"[bench {self.a.name}] {msg}", file=sys.stderr, flush=True)

    def hook(self, what: str, cmd: str | None, tool: str = "", run: int = 0) -> None:
        if not cmd:
            return
        env = dict(self.env, BENCH_TOOL=tool, BENCH_RUN=str(run))
        logf = self.out / "logs" / f"{what}.log"
        with open(logf, "ab") as f:
            f.write(f"\n### {tool} run {run}: {cmd}\n".encode())
            f.flush()
            r = subprocess.run(["bash", "-c", cmd], env=env, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            msg = f"{what} hook failed (exit {r.returncode}) for {tool or 'all'} run {run}: {cmd}; log {logf}"
            if self.a.keep_going:
                self.log("warning: " + msg)
                self.failed = True
            else:
                raise RuntimeError(msg)

    def timed(self, tool: str, run: int) -> dict:
        env = dict(self.env, BENCH_TOOL=tool, BENCH_RUN=str(run))
        logf = self.out / "logs" / f"{tool}.log"
        with tempfile.NamedTemporaryFile("r", prefix="bench-time-", delete=False) as tf:
            tpath = tf.name
        try:
            with open(logf, "ab") as f:
                f.write(f"\n### run {run}: {self.tools[tool]}\n".encode())
                f.flush()
                t0 = time.perf_counter()
                r = subprocess.run([GNU_TIME, "-f", "%M", "-o", tpath, "bash", "-c", self.tools[tool]],
                                   env=env, stdout=f, stderr=subprocess.STDOUT)
                wall = time.perf_counter() - t0
            lines = [ln for ln in Path(tpath).read_text().splitlines() if ln.strip()]
            rss = int(lines[-1]) if lines and lines[-1].strip().isdigit() else None
        finally:
            os.unlink(tpath)
        return {"run": run, "wall_s": round(wall, 6), "max_rss_kb": rss, "exit": r.returncode}

    def schedule(self) -> list[tuple[str, int]]:
        n, names, a = len(self.names), self.names, self.a
        order: list[tuple[str, int]] = []
        if a.order == "grouped":
            for t in names:
                order += [(t, i) for i in range(-a.warmup, a.runs)]
        else:
            for i in range(-a.warmup, a.runs):
                shift = (i % n) if a.order == "rotate" else 0
                order += [(names[(k + shift) % n], i) for k in range(n)]
        return order

    def run(self) -> int:
        a = self.a
        self.log(f"{len(self.names)} tools x {a.runs} runs ({a.order}"
                 f"{f', {a.warmup} warm-up' if a.warmup else ''}{f', pause {a.pause}s' if a.pause else ''})"
                 f" -> {self.out}")
        for t, cmd in self.version_for.items():
            r = subprocess.run(["bash", "-c", cmd], env=self.env, capture_output=True, text=True)
            self.version_for[t] = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else ""
        started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        try:
            self.hook("prepare", a.prepare)
            for tool, i in self.schedule():
                self.hook("setup", a.setup, tool, i)
                self.hook("setup", self.setup_for.get(tool), tool, i)
                if a.drop_caches:
                    subprocess.run(["sync"])
                    Path("/proc/sys/vm/drop_caches").write_text("3\n")
                res = self.timed(tool, i)
                self.hook("cleanup", self.cleanup_for.get(tool), tool, i)
                self.hook("cleanup", a.cleanup, tool, i)
                tag = "warm-up" if i < 0 else f"run {i + 1}/{a.runs}"
                rss = f"{res['max_rss_kb'] / 1024:.0f} MB" if res["max_rss_kb"] else "?"
                status = "" if res["exit"] == 0 else f"  EXIT {res['exit']}"
                self.log(f"{tool:<12} {tag:<9} {res['wall_s']:8.3f} s  rss {rss}{status}")
                if res["exit"] != 0:
                    self.failed = True
                    if not a.keep_going:
                        tail = (self.out / "logs" / f"{tool}.log").read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"{tool} exited {res['exit']} on run {i}; log tail:\n{tail}")
                if i >= 0:
                    self.runs[tool].append(res)
                if a.pause:
                    time.sleep(a.pause)
        except (RuntimeError, KeyboardInterrupt) as e:
            self.log(f"error: {e}")
            self.failed = True
        finally:
            try:
                self.hook("finish", a.finish)
            except RuntimeError as e:
                self.log(f"error: {e}")
        self.report(started)
        return 1 if self.failed else 0

    def summary(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for t in self.names:
            ok = [r for r in self.runs[t] if r["exit"] == 0]
            walls = [r["wall_s"] for r in ok]
            rss = [r["max_rss_kb"] for r in ok if r["max_rss_kb"] is not None]
            out[t] = {
                "ok_runs": len(ok), "failed_runs": len(self.runs[t]) - len(ok),
                "median_s": statistics.median(walls) if walls else None,
                "min_s": min(walls) if walls else None,
                "max_s": max(walls) if walls else None,
                "mean_s": statistics.fmean(walls) if walls else None,
                "stdev_s": statistics.stdev(walls) if len(walls) > 1 else 0.0 if walls else None,
                "median_rss_mb": statistics.median(rss) / 1024 if rss else None,
                "max_rss_mb": max(rss) / 1024 if rss else None,
            }
        base = out[self.baseline]["median_s"]
        for t in self.names:
            m = out[t]["median_s"]
            out[t]["ratio"] = (m / base) if (m is not None and base) else None
        return out

    def report(self, started: str) -> None:
        s = self.summary()
        a = self.a

        def f(v, fmt):
            return "-" if v is None else format(v, fmt)

        head = ["tool", "runs", "median s", "min s", "max s", "stdev s", f"x {self.baseline}",
                "rss MB (median)"]
        rows = [[t, f"{s[t]['ok_runs']}" + (f" ({s[t]['failed_runs']} failed)" if s[t]["failed_runs"] else ""),
                 f(s[t]["median_s"], ".3f"), f(s[t]["min_s"], ".3f"), f(s[t]["max_s"], ".3f"),
                 f(s[t]["stdev_s"], ".3f"), f(s[t]["ratio"], ".2f"), f(s[t]["median_rss_mb"], ".0f")]
                for t in self.names]
        widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
        line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                   for i, (c, w) in enumerate(zip(r, widths)))
        print(f"# {a.name}: {a.runs} runs, order {a.order}"
              f"{f', pause {a.pause}s' if a.pause else ''}{f', drop caches' if a.drop_caches else ''}")
        print(line(head))
        for r in rows:
            print(line(r))
        sys.stdout.flush()

        host = {
            "hostname": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "cwd_fs": _fstype(Path.cwd()),
        }
        git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        doc = {
            "name": a.name, "started": started,
            "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "git": git, "host": host, "note": a.note,
            "params": {"runs": a.runs, "warmup": a.warmup, "order": a.order, "pause_s": a.pause,
                       "drop_caches": a.drop_caches, "baseline": self.baseline,
                       "setup": a.setup, "cleanup": a.cleanup, "prepare": a.prepare, "finish": a.finish},
            "tools": {t: {"cmd": self.tools[t], "setup": self.setup_for.get(t),
                          "cleanup": self.cleanup_for.get(t), "version": self.version_for.get(t),
                          "summary": s[t], "runs": self.runs[t]} for t in self.names},
        }
        (self.out / "result.json").write_text(json.dumps(doc, indent=2) + "\n")
        md = [f"## {a.name}", "",
              f"{started}, git {git or '?'}, {host['cpus']} cpus, kernel {host['kernel']}, cwd on {host['cwd_fs']}; "
              f"{a.runs} runs per tool, order {a.order}"
              f"{f', pause {a.pause}s' if a.pause else ''}{', page cache dropped' if a.drop_caches else ''}.",
              ""]
        if a.note:
            md += [a.note, ""]
        md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        md += ["", "| tool | command | version |", "|---|---|---|"]
        md += [f"| {t} | `{self.tools[t]}` | {self.version_for.get(t, '')} |" for t in self.names]
        (self.out / "result.md").write_text("\n".join(md) + "\n")
        latest = self.out.parent / f"{a.name}-latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.out.name)
        except OSError:
            pass
        self.log(f"results: {self.out}/result.json, result.md")


def _fstype(path: Path) -> str:
    best, fs = "", "?"
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1]
            if (str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fs = mnt, parts[2]
    except OSError:
        pass
    return fs


def main() -> int:
    if shutil.which("bash") is None:
        sys.exit("bench: bash not found")
    return Bench(load_args(sys.argv[1:])).run()


if __name__ == "__main__":
    sys.exit(main())
