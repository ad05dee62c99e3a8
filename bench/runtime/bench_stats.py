"""Numbers every system's measurement reports the same way."""

import math


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def latency_summary(samples_s):
    """Round-trip samples in seconds -> summary in milliseconds."""
    ms = sorted(s * 1000.0 for s in samples_s)
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "source": "client-measured round trips",
    }


def throughput_summary(submitted, completed, elapsed_s, cap_s, capped):
    return {
        "submitted": submitted,
        "completed": completed,
        "elapsed_s": elapsed_s,
        "tasks_per_s": (completed / elapsed_s
                        if completed is not None and elapsed_s and elapsed_s > 0 else None),
        "cap_s": cap_s,
        "capped": capped,
    }
