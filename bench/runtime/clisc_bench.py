"""clisc: `clisc coordinator --plan` over no-op plans, with `clisc worker --roles noop` processes.

Throughput: N independent tasks. Latency: a chain of tasks, each depending on the one before,
so exactly one task is ready at a time; the per-task latency is the coordinator's wall time over
the chain length, plus the summary's round-trip percentiles when the coordinator reports them.
"""

import json
import os
import sqlite3
import subprocess
import time

import bench_stats
from bench_procs import free_loopback_port
from make_plan import write_plan

COORDINATOR_FLAGS = ["--ledger", "--run", "--plan", "--bind", "--http", "--exit-when-done",
                     "--summary"]
WORKER_FLAGS = ["--connect", "--roles", "--slots", "--id"]
SUMMARY_FIELDS = ["tasks_succeeded", "wall_s", "tasks_per_s"]


class NotSupported(RuntimeError):
    """The binary at hand does not have the runtime commands this bench drives."""


def check_binary(clisc):
    if not os.path.isfile(clisc) or not os.access(clisc, os.X_OK):
        raise NotSupported(f"no clisc executable at {clisc} (build it, or pass --clisc PATH)")
    for command, flags in (("coordinator", COORDINATOR_FLAGS), ("worker", WORKER_FLAGS)):
        try:
            out = subprocess.run([clisc, command, "--help"], capture_output=True, text=True,
                                 timeout=20, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise NotSupported(f"`{clisc} {command} --help` did not return within 20 s")
        text = out.stdout + out.stderr
        missing = [f for f in flags if f not in text]
        if out.returncode != 0 or missing:
            first_line = (text.strip().splitlines() or ["(no output)"])[0]
            raise NotSupported(
                f"`{clisc} {command}` is not usable by this bench yet: --help exited "
                f"{out.returncode}" + (f", lacks {' '.join(missing)}" if missing else "")
                + f" ({first_line})")


def _log_tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _succeeded_in_ledger(ledger):
    """Best effort for a run stopped at the cap: counts finished tasks (schemas/ledger.sql)."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM tasks WHERE state = 'succeeded'").fetchone()[0]
    except sqlite3.Error:
        return None


def _run_phase(cfg, procs, work_dir, phase, shape, n, timeout_s):
    """One coordinator run to completion; returns (summary or None, outside wall s, ledger)."""
    d = os.path.join(work_dir, f"clisc-{phase}")
    os.makedirs(d, exist_ok=True)
    plan = write_plan(shape, n, os.path.join(d, "plan.json"))
    ledger = os.path.join(d, "ledger.sqlite")
    summary_path = os.path.join(d, "summary.json")
    port = free_loopback_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    log_level = ["--log-level", cfg.clisc_log_level]
    name = f"clisc-{phase}-coordinator"
    t0 = time.perf_counter()
    coordinator = procs.start(name, [
        cfg.clisc, *log_level, "coordinator", "--ledger", ledger, "--run", f"bench-{phase}",
        "--plan", plan, "--bind", endpoint, "--http", "127.0.0.1:0", "--exit-when-done",
        "--summary", summary_path], cwd=d)
    # Workers start at once: ZeroMQ connects retry until the coordinator binds, and a coordinator
    # that fails (a taken port, a bad plan) is caught by its exit status below.
    workers = [procs.start(f"clisc-{phase}-worker-{i}", [
        cfg.clisc, *log_level, "worker", "--connect", endpoint, "--roles", "noop", "--slots",
        str(cfg.clisc_slots), "--id", f"w{i}"], cwd=d) for i in range(1, cfg.workers + 1)]
    try:
        coordinator.wait(timeout=timeout_s)
        capped = False
    except subprocess.TimeoutExpired:
        capped = True
    outside_wall = time.perf_counter() - t0
    procs.stop(coordinator)
    for w in workers:
        procs.stop(w)
    if capped:
        return None, outside_wall, ledger
    if coordinator.returncode != 0:
        raise RuntimeError(f"clisc coordinator ({phase}) exited {coordinator.returncode}: "
                           f"{_log_tail(procs.log_path(name))}")
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"clisc coordinator ({phase}) wrote no readable summary at "
                           f"{summary_path}: {exc}") from exc
    missing = [k for k in SUMMARY_FIELDS if not isinstance(summary.get(k), (int, float))]
    if missing:
        raise RuntimeError(f"{summary_path} lacks numeric {', '.join(missing)}")
    return summary, outside_wall, ledger


def _summary_roundtrip(summary):
    """The coordinator's TaskAssign-sent -> TaskResult-read percentiles, when it measured any."""
    rt = summary.get("roundtrip_ms") or {}
    p50, p99 = rt.get("p50"), rt.get("p99")
    if not isinstance(p50, (int, float)) or rt.get("count") == 0:
        return None, None
    return p50, p99


def _flow_s(summary):
    """First assignment to last result when the summary has it (no start-up or shut-down)."""
    flow = summary.get("flow_s")
    return flow if isinstance(flow, (int, float)) and flow > 0 else summary["wall_s"]


def _latency_phase(cfg, procs, work_dir, notes):
    """The chain run; an unfinished chain is reported, and the throughput run still goes."""
    timeout_s = cfg.cap_s + 30
    chain, outside, ledger = _run_phase(cfg, procs, work_dir, "latency", "chain",
                                        cfg.latency_tasks, timeout_s)
    if chain is None:
        done = _succeeded_in_ledger(ledger)
        notes.append(f"latency chain unfinished: {done if done is not None else '?'}/"
                     f"{cfg.latency_tasks} done in {outside:.0f} s")
        return {"n": cfg.latency_tasks, "completed": done, "p50_ms": None, "p99_ms": None,
                "outside_wall_s": outside, "source": "unfinished chain"}
    flow_s = _flow_s(chain)
    per_task_ms = flow_s * 1000.0 / cfg.latency_tasks
    p50, p99 = _summary_roundtrip(chain)
    latency = {"n": cfg.latency_tasks, "chain_per_task_ms": per_task_ms, "chain_s": flow_s,
               "coordinator_wall_s": chain["wall_s"], "outside_wall_s": outside,
               "summary": chain}
    if p50 is not None:
        latency.update(p50_ms=p50, p99_ms=p99, source="coordinator assign->result round trips")
    else:
        latency.update(p50_ms=per_task_ms, p99_ms=None, source="chain time / tasks")
    # The chain's time per task also counts the coordinator's step from a result to the next
    # lease (ledger commit, dependency release), which a client-side round trip includes too.
    notes.append(f"chain {per_task_ms:.2f} ms/task")
    if chain.get("state") not in (None, "succeeded"):
        notes.append(f"latency run ended {chain['state']}")
    return latency


def run(cfg, procs, work_dir):
    check_binary(cfg.clisc)
    version = subprocess.run([cfg.clisc, "--version"], capture_output=True, text=True,
                             timeout=20).stdout.strip() or "?"
    notes = []

    latency = _latency_phase(cfg, procs, work_dir, notes)
    summary, outside, ledger = _run_phase(cfg, procs, work_dir, "throughput", "independent",
                                          cfg.tasks, cfg.cap_s + 15)
    if summary is None:
        done = _succeeded_in_ledger(ledger)
        throughput = bench_stats.throughput_summary(cfg.tasks, done, outside, cfg.cap_s, True)
        notes.insert(0, f"{done if done is not None else '?'}/{cfg.tasks} done (capped, "
                     f"coordinator stopped at {outside:.0f} s)")
    else:
        flow_s = _flow_s(summary)
        throughput = bench_stats.throughput_summary(cfg.tasks, summary["tasks_succeeded"],
                                                    flow_s, cfg.cap_s, False)
        if summary["tasks_per_s"] > 0:
            throughput["tasks_per_s"] = summary["tasks_per_s"]
        throughput.update(coordinator_wall_s=summary["wall_s"], outside_wall_s=outside,
                          summary=summary)
        notes.insert(0, f"{summary['tasks_succeeded']}/{cfg.tasks} done in {flow_s:.1f} s "
                     f"(coordinator up {summary['wall_s']:.1f} s, outside {outside:.1f} s)")
        if summary.get("state") not in (None, "succeeded"):
            notes.insert(1, f"throughput run ended {summary['state']}")
    return {
        "system": "clisc",
        "label": f"{version}, coordinator + {cfg.workers} workers x {cfg.clisc_slots} slots",
        "config": {"binary": cfg.clisc, "workers": cfg.workers, "slots": cfg.clisc_slots,
                   "worker_processes": cfg.workers, "log_level": cfg.clisc_log_level},
        "throughput": throughput,
        "latency": latency,
        "notes": notes,
    }
