#!/usr/bin/python3
"""Writes no-op task plans for `clisc coordinator --plan` (format: coordinator/task_plan_file.h).

  make_plan.py independent N OUT.json   N tasks with no dependencies (throughput)
  make_plan.py chain N OUT.json         N tasks, each depending on the one before (latency:
                                        exactly one task is ready at any time)
"""

import argparse
import json
import os
import sys


def task_keys(n):
    width = max(5, len(str(n)))
    return [f"t{i:0{width}d}" for i in range(1, n + 1)]


def make_plan(shape, n):
    if n < 1:
        raise ValueError(f"a plan needs at least one task, got {n}")
    if shape not in ("independent", "chain"):
        raise ValueError(f"unknown plan shape '{shape}' (independent or chain)")
    tasks = []
    previous = None
    for key in task_keys(n):
        deps = [previous] if shape == "chain" and previous else []
        tasks.append({"key": key, "stage": "noop", "role": "noop", "params": {}, "deps": deps})
        previous = key
    return {"tasks": tasks}


def write_plan(shape, n, path):
    """Writes atomically so a coordinator never reads half a plan."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(make_plan(shape, n), f, separators=(",", ":"))
    os.replace(tmp, path)
    return path


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", choices=["independent", "chain"])
    parser.add_argument("tasks", type=int)
    parser.add_argument("out")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("tasks must be >= 1")
    write_plan(args.shape, args.tasks, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
