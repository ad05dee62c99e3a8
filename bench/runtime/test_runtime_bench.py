#!/usr/bin/python3
"""Checks of the runtime bench's own parts (no Celery, Dask or clisc needed).

  /usr/bin/python3 -m unittest discover -s bench/runtime -p 'test_*.py'
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# Keep the source tree free of __pycache__ (children inherit the environment variable).
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_stats  # noqa: E402
import clisc_bench  # noqa: E402
import make_plan  # noqa: E402
import run_bench  # noqa: E402
from bench_procs import ProcessSet, free_loopback_port, wait_for_port  # noqa: E402


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


class MakePlanTest(unittest.TestCase):
    def test_independent_tasks_have_no_deps_and_unique_keys(self):
        plan = make_plan.make_plan("independent", 1200)
        keys = [t["key"] for t in plan["tasks"]]
        self.assertEqual(len(set(keys)), 1200)
        self.assertEqual(keys[0], "t00001")
        self.assertTrue(all(t["deps"] == [] and t["role"] == "noop" and t["stage"] == "noop"
                            and t["params"] == {} for t in plan["tasks"]))

    def test_chain_depends_on_the_previous_task_only(self):
        tasks = make_plan.make_plan("chain", 4)["tasks"]
        self.assertEqual([t["deps"] for t in tasks], [[], ["t00001"], ["t00002"], ["t00003"]])

    def test_keys_widen_past_five_digits_and_stay_ordered(self):
        keys = make_plan.task_keys(123456)
        self.assertEqual(keys[0], "t000001")
        self.assertEqual(keys, sorted(keys))

    def test_rejects_bad_shape_and_count(self):
        with self.assertRaises(ValueError):
            make_plan.make_plan("tree", 3)
        with self.assertRaises(ValueError):
            make_plan.make_plan("chain", 0)

    def test_cli_writes_a_json_plan(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "plan.json")
            subprocess.run([sys.executable, make_plan.__file__, "chain", "3", out], check=True)
            with open(out) as f:
                self.assertEqual(len(json.load(f)["tasks"]), 3)
            self.assertEqual(os.listdir(d), ["plan.json"])


class StatsTest(unittest.TestCase):
    def test_percentiles_interpolate_like_numpy(self):
        values = list(range(1, 101))
        self.assertAlmostEqual(bench_stats.percentile(values, 50), 50.5)
        self.assertAlmostEqual(bench_stats.percentile(values, 99), 99.01)
        self.assertIsNone(bench_stats.percentile([], 50))

    def test_latency_summary_is_in_milliseconds(self):
        s = bench_stats.latency_summary([0.001, 0.003, 0.002])
        self.assertAlmostEqual(s["p50_ms"], 2.0)
        self.assertEqual(s["n"], 3)

    def test_unknown_completion_gives_no_rate(self):
        self.assertIsNone(bench_stats.throughput_summary(10, None, 5.0, 60, True)["tasks_per_s"])
        self.assertEqual(bench_stats.throughput_summary(10, 10, 2.0, 60, False)["tasks_per_s"], 5)


class ProcessSetTest(unittest.TestCase):
    def test_stop_all_ends_forked_grandchildren(self):
        with tempfile.TemporaryDirectory() as d:
            procs = ProcessSet(d)
            pid_file = os.path.join(d, "grandchild.pid")
            # The grandchild ignores SIGTERM, like a busy pool child: SIGKILL must follow.
            procs.start("parent", ["sh", "-c", f"sh -c 'trap \"\" TERM; echo $$ > {pid_file}; "
                                   f"exec sleep 100' & wait"])
            deadline = time.monotonic() + 5
            while not os.path.exists(pid_file) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.05)
            with open(pid_file) as f:
                grandchild = int(f.read())
            self.assertTrue(_alive(grandchild))
            procs.stop_all(grace_s=0.5)
            deadline = time.monotonic() + 3
            while _alive(grandchild) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertFalse(_alive(grandchild))
            self.assertTrue(os.path.exists(procs.log_path("parent")))

    def test_wait_for_port_fails_fast_when_the_server_exits(self):
        with tempfile.TemporaryDirectory() as d:
            procs = ProcessSet(d)
            proc = procs.start("quitter", ["sh", "-c", "exit 3"])
            with self.assertRaisesRegex(RuntimeError, "exited with code 3"):
                wait_for_port(free_loopback_port(), 5, proc, "quitter")
            procs.stop_all()

    def test_wait_for_port_sees_a_listener(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            wait_for_port(s.getsockname()[1], 2)


class CliscCheckTest(unittest.TestCase):
    def test_missing_binary_is_named(self):
        with self.assertRaisesRegex(clisc_bench.NotSupported, "no clisc executable at /nope"):
            clisc_bench.check_binary("/nope/clisc")

    def test_binary_without_runtime_flags_is_refused(self):
        with self.assertRaisesRegex(clisc_bench.NotSupported, "lacks --ledger"):
            clisc_bench.check_binary("/bin/true")


class TableTest(unittest.TestCase):
    def test_failed_system_is_one_row(self):
        table = run_bench.markdown_table([{"system": "dask", "ok": False,
                                           "error": "line one\nline | two"}])
        rows = table.splitlines()
        self.assertEqual(len(rows), 3)
        self.assertIn("not run: line one line / two", rows[2])


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    unittest.main()
