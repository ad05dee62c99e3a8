"""Celery 5.2 with a private Redis as broker and result backend: no-op throughput and latency."""

import gc
import os
import socket
import subprocess
import sys
import time

import bench_stats
from bench_procs import free_loopback_port, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))


def start_redis(procs, work_dir, name="redis"):
    """A redis-server of our own: loopback only, a port we picked, no persistence, in work_dir."""
    for _ in range(3):  # the picked port can be taken by someone else before redis binds it
        port = free_loopback_port()
        data_dir = os.path.join(work_dir, f"{name}-{port}")
        os.makedirs(data_dir, exist_ok=True)
        proc = procs.start(name, [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", data_dir,
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
            # The client reads result notifications only after it has submitted every task.
            "--client-output-buffer-limit", "pubsub 0 0 0",
        ])
        try:
            wait_for_port(port, 10, proc, f"redis-server (log {procs.log_path(name)})")
            return port
        except RuntimeError:
            if proc.poll() is None:
                raise
            procs.stop(proc)
    raise RuntimeError("redis-server failed to start on three picked ports; see "
                       + procs.log_path(name))


def _worker_env(redis_url):
    env = dict(os.environ)
    env["CLISC_BENCH_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start_workers(procs, pool, workers, redis_url):
    base = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
    env = _worker_env(redis_url)
    if pool == "prefork":
        procs.start("celery-prefork", base + ["--pool=prefork", f"--concurrency={workers}",
                                              "-n", "bench-prefork@%h"], env=env, cwd=HERE)
        return 1
    for i in range(workers):
        procs.start(f"celery-solo-{i + 1}", base + ["--pool=solo", "-n", f"bench-solo{i + 1}@%h"],
                    env=env, cwd=HERE)
    return workers


def _wait_for_nodes(app, procs, nodes, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = procs.exited()
        if dead:
            raise RuntimeError(f"{dead[0]} exited while Celery workers were starting; see "
                               f"{procs.log_path(dead[0])}")
        replies = app.control.ping(timeout=0.5)
        if len(replies) >= nodes:
            return
    raise RuntimeError(f"only some of {nodes} Celery worker nodes answered ping within "
                       f"{timeout_s} s; see {procs.log_dir}")


def _is_timeout(exc):
    from celery.exceptions import TimeoutError as CeleryTimeout
    return isinstance(exc, (CeleryTimeout, TimeoutError, socket.timeout))


def run(cfg, procs, work_dir):
    """Measures one pool mode; returns the system's result record (see run_bench.py)."""
    pool = cfg.celery_pool
    redis_port = start_redis(procs, work_dir)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    os.environ["CLISC_BENCH_REDIS_URL"] = redis_url
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import celery_app

    app, noop = celery_app.app, celery_app.noop
    nodes = _start_workers(procs, pool, cfg.workers, redis_url)
    _wait_for_nodes(app, procs, nodes, 60)

    for i in range(cfg.warmup):
        noop.apply_async((i,)).get(timeout=30)

    samples = []
    for i in range(cfg.latency_tasks):
        t0 = time.perf_counter()
        noop.apply_async((i,)).get(timeout=30)
        samples.append(time.perf_counter() - t0)

    results = []
    try:
        return _throughput_and_record(cfg, app, noop, pool, redis_port, samples, results)
    finally:
        # AsyncResults unsubscribe from Redis when collected (also when an interrupt unwinds
        # this frame): let that happen while Redis still runs, or each one retries for minutes.
        results.clear()
        gc.collect()


def _throughput_and_record(cfg, app, noop, pool, redis_port, samples, results):
    import celery
    from celery.result import ResultSet

    t_first = time.perf_counter()
    deadline = t_first + cfg.cap_s
    for i in range(cfg.tasks):
        if time.perf_counter() > deadline:
            break
        results.append(noop.apply_async((i,)))
    t_submitted = time.perf_counter()
    done = {"n": 0, "last": None}

    def on_result(_task_id, _value):
        done["n"] += 1
        done["last"] = time.perf_counter()

    capped = False
    try:
        ResultSet(results).join_native(timeout=max(0.1, deadline - time.perf_counter()),
                                       callback=on_result)
    except Exception as exc:  # Celery raises its own, socket's or builtin TimeoutError
        if not _is_timeout(exc):
            raise
        capped = True
    # The rate is over first submit -> last result seen, capped or not (join_native's timeout
    # is checked between reads, so the wait itself can overrun the cap by a few seconds).
    elapsed = (done["last"] or time.perf_counter()) - t_first
    if capped or len(results) < cfg.tasks:
        capped = True
        app.control.purge()
    submitted = len(results)

    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.split()
    redis_version = next((w.split("=")[1] for w in redis_version if w.startswith("v=")), "?")
    label = (f"Celery {celery.__version__}, Redis {redis_version} broker+backend, "
             + (f"prefork x{cfg.workers}" if pool == "prefork" else f"{cfg.workers} solo workers"))
    cap_note = f" (capped at {cfg.cap_s:.0f} s)" if capped else ""
    notes = [f"{done['n']}/{cfg.tasks} done{cap_note}",
             f"submit {t_submitted - t_first:.1f} s"]
    return {
        "system": "celery",
        "label": label,
        "config": {"pool": pool, "workers": cfg.workers, "worker_processes":
                   cfg.workers if pool == "solo" else cfg.workers + 1, "redis_port": redis_port,
                   "celery": celery.__version__, "redis_server": redis_version,
                   "warmup_tasks": cfg.warmup},
        "throughput": dict(bench_stats.throughput_summary(submitted, done["n"], elapsed,
                                                          cfg.cap_s, capped),
                           submit_s=t_submitted - t_first),
        "latency": bench_stats.latency_summary(samples),
        "notes": notes,
    }
