"""Dask distributed 2022.12: a dask-scheduler process and single-threaded dask-worker processes."""

import os
import time

import bench_stats
from bench_procs import free_loopback_port, wait_for_port

HERE = os.path.dirname(os.path.abspath(__file__))


def noop(i):
    return i


def _env():
    env = dict(os.environ)
    # Workers unpickle `noop` by reference to this module.
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    # A loaded 2-core machine makes every process warn about event-loop ticks; keep logs short.
    env["DASK_DISTRIBUTED__ADMIN__TICK__LIMIT"] = "10s"
    return env


def _start_cluster(procs, cfg, work_dir):
    port = free_loopback_port()
    scheduler = procs.start("dask-scheduler", [
        "dask-scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
        "--no-show"], env=_env(), cwd=work_dir)
    wait_for_port(port, 60, scheduler, f"dask-scheduler (log {procs.log_path('dask-scheduler')})")
    for i in range(cfg.workers):
        name = f"dask-worker-{i + 1}"
        procs.start(name, [
            "dask-worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--nworkers", "1",
            "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
            "--worker-port", str(free_loopback_port()), "--name", f"w{i + 1}",
            "--memory-limit", "0", "--local-directory", os.path.join(work_dir, name)],
            env=_env(), cwd=work_dir)
    return port


def run(cfg, procs, work_dir):
    import distributed
    from distributed import Client, wait

    port = _start_cluster(procs, cfg, work_dir)
    client = Client(f"tcp://127.0.0.1:{port}", timeout="30s")
    try:
        try:
            client.wait_for_workers(cfg.workers, timeout=90)
        except Exception as exc:
            raise RuntimeError(f"{cfg.workers} dask workers did not join the scheduler at "
                               f"tcp://127.0.0.1:{port} ({exc}); see {procs.log_dir}") from exc

        for f in client.map(noop, range(cfg.warmup), pure=False):
            f.result(timeout=30)

        samples = []
        for i in range(cfg.latency_tasks):
            t0 = time.perf_counter()
            client.submit(noop, i, pure=False).result(timeout=30)
            samples.append(time.perf_counter() - t0)

        t_first = time.perf_counter()
        futures = client.map(noop, range(cfg.tasks), pure=False)
        t_submitted = time.perf_counter()
        capped = False
        try:
            wait(futures, timeout=max(0.1, t_first + cfg.cap_s - time.perf_counter()))
        except (TimeoutError, distributed.TimeoutError):
            capped = True
        t_done = time.perf_counter()
        completed = sum(1 for f in futures if f.status == "finished")
        if capped:
            elapsed = t_done - t_first
            client.cancel(futures)
        else:
            # The client knows every task finished; fetch the values too, as Celery's client has.
            client.gather(futures)
            elapsed = time.perf_counter() - t_first
        del futures

        label = (f"Dask distributed {distributed.__version__}, scheduler + {cfg.workers} "
                 f"dask-worker --nthreads 1")
        notes = [f"{completed}/{cfg.tasks} done" + (f" (capped at {cfg.cap_s:.0f} s)"
                                                      if capped else ""),
                 f"stopped at {elapsed:.1f} s" if capped else
                 f"all finished at {t_done - t_first:.1f} s, gathered at {elapsed:.1f} s"]
        return {
            "system": "dask",
            "label": label,
            "config": {"workers": cfg.workers, "nthreads": 1, "nanny": False,
                       "worker_processes": cfg.workers, "scheduler_port": port,
                       "distributed": distributed.__version__, "warmup_tasks": cfg.warmup},
            "throughput": dict(bench_stats.throughput_summary(cfg.tasks, completed, elapsed,
                                                              cfg.cap_s, capped),
                               submit_s=t_submitted - t_first, all_finished_s=t_done - t_first),
            "latency": bench_stats.latency_summary(samples),
            "notes": notes,
        }
    finally:
        client.close(timeout=10)
