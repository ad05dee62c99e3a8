#!/usr/bin/python3
"""Runtime bench: no-op task throughput and dispatch latency of Celery, Dask and clisc.

Each system runs with the same number of worker processes on this machine, one after the other:
a latency phase (sequential round trips) and then a throughput phase (N tasks submitted at once,
capped in time). Prints one Markdown table and writes it with the raw numbers to --out.
See README.md next to this file.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# Keep the source tree free of __pycache__ (children inherit the environment variable).
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
sys.path.insert(0, HERE)

from bench_procs import ProcessSet  # noqa: E402

SYSTEMS = ("celery", "dask", "clisc")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(REPO, "build", "bench-runtime"),
                   help="output dir for results.json, results.md and logs/ "
                        "(default: build/bench-runtime)")
    p.add_argument("--clisc", default=os.path.join(REPO, "build", "release", "cli", "clisc"),
                   help="clisc executable (default: build/release/cli/clisc)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help="comma-separated subset of celery,dask,clisc (default: all)")
    p.add_argument("--tasks", type=int, default=20000, help="throughput phase tasks")
    p.add_argument("--latency-tasks", type=int, default=1000, help="sequential round trips")
    p.add_argument("--cap-s", type=float, default=60.0,
                   help="time cap of each throughput phase; what completed is reported")
    p.add_argument("--workers", type=int, default=4, help="worker processes per system")
    p.add_argument("--warmup", type=int, default=100,
                   help="untimed tasks before Celery's and Dask's phases")
    p.add_argument("--celery-pool", choices=["prefork", "solo"], default="prefork",
                   help="prefork: one worker, --concurrency=WORKERS; solo: WORKERS workers")
    p.add_argument("--clisc-slots", type=int, default=64, help="clisc worker --slots")
    p.add_argument("--clisc-log-level", default="warn", help="clisc --log-level")
    p.add_argument("--keep-work", action="store_true",
                   help="keep the temp dir (redis data, clisc plans and ledgers)")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.tasks < 1 or args.latency_tasks < 1 or args.workers < 1 or args.cap_s <= 0:
        p.error("--tasks, --latency-tasks, --workers must be >= 1 and --cap-s > 0")
    args.clisc = os.path.abspath(args.clisc)
    args.out = os.path.abspath(args.out)
    return args


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                         "?")
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(l.split()[1]) for l in f if l.startswith("MemTotal"))
            mem_gib = round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "mem_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
        "hostname": platform.node(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def markdown_table(results):
    rows = ["| system | throughput tasks/s | latency p50 ms | latency p99 ms | notes |",
            "|---|---:|---:|---:|---|"]
    for r in results:
        if not r.get("ok"):
            error = " ".join(r["error"].split()).replace("|", "/")
            rows.append(f"| {r['system']} | n/a | n/a | n/a | not run: {error} |")
            continue
        tp, lat = r["throughput"], r["latency"]
        notes = "; ".join([f"latency from {lat.get('source')}"] + r.get("notes", []))
        rows.append(f"| {r['label']} | {_fmt(tp.get('tasks_per_s'), 0)} | "
                    f"{_fmt(lat.get('p50_ms'), 2)} | {_fmt(lat.get('p99_ms'), 2)} | {notes} |")
    return "\n".join(rows)


def machine_line(m):
    return (f"Machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
            f"{m['mem_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, load average at "
            f"start {m['loadavg_at_start'][0]:.2f}")


def run_system(name, cfg, procs, work_dir):
    if name == "celery":
        import celery_bench as module
    elif name == "dask":
        import dask_bench as module
    else:
        import clisc_bench as module
    load_at_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        result = module.run(cfg, procs, work_dir)
        result["ok"] = True
    except Exception as exc:  # one system failing must not stop the others
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, ImportError):
            reason += " (install the bench packages: deploy/install-deps.sh --with-bench)"
        result = {"system": name, "ok": False, "error": reason}
        if not (name == "clisc" and type(exc).__name__ == "NotSupported"):
            result["traceback"] = traceback.format_exc()
        print(f"run_bench: {name} failed: {reason}", file=sys.stderr)
    finally:
        procs.stop_all()
    result["phase_wall_s"] = time.perf_counter() - t0
    # Other people's jobs on a shared machine move these numbers; the 1-min load says how much.
    result["load_1min_at_start"] = load_at_start
    return result


def main(argv):
    cfg = parse_args(argv)
    os.makedirs(cfg.out, exist_ok=True)
    log_dir = os.path.join(cfg.out, "logs")
    shutil.rmtree(log_dir, ignore_errors=True)
    work_dir = tempfile.mkdtemp(prefix="clisc-bench-runtime-")
    all_procs = []

    def cleanup():
        for procs in all_procs:
            procs.stop_all(grace_s=3)
        if not cfg.keep_work:
            shutil.rmtree(work_dir, ignore_errors=True)

    def on_signal(signum, _frame):
        # Unwinds through run_system's `finally`, which stops that system's processes.
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # A shell that starts us in the background sets SIGINT to ignored; Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    machine = machine_info()
    print(machine_line(machine), file=sys.stderr)
    results = []
    try:
        for name in cfg.systems:
            print(f"run_bench: {name} ...", file=sys.stderr, flush=True)
            procs = ProcessSet(os.path.join(log_dir, name))
            all_procs.append(procs)
            results.append(run_system(name, cfg, procs, work_dir))
    except KeyboardInterrupt:
        print("run_bench: interrupted; stopping every process it started", file=sys.stderr)
        cleanup()
        return 130
    finally:
        cleanup()

    table = markdown_table(results)
    report = f"{table}\n\n{machine_line(machine)}\n"
    print(report)
    config = {k: v for k, v in vars(cfg).items()}
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write(report)
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump({"machine": machine, "config": config, "systems": results, "table_md": table},
                  f, indent=2)
    print(f"run_bench: wrote {cfg.out}/results.json, results.md, logs/", file=sys.stderr)
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    try:
        exit_code = main(sys.argv[1:])
    except SystemExit as exc:  # SIGTERM/SIGHUP (after cleanup), or argparse
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        exit_code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # Every process is stopped by now. Skip interpreter finalization: Celery's pending results
    # try to unsubscribe from the stopped Redis in their finalizers and retry for minutes.
    os._exit(exit_code)
