"""The Celery app of the runtime bench: one no-op task, Redis as broker and result backend.

Imported both by the bench client and by `celery -A celery_app worker`; the Redis URL comes from
CLISC_BENCH_REDIS_URL so both sides talk to the bench's private redis-server.
"""

import os

from celery import Celery

_redis_url = os.environ.get("CLISC_BENCH_REDIS_URL")
if not _redis_url:
    raise RuntimeError("CLISC_BENCH_REDIS_URL is not set (the bench's private redis-server, "
                       "e.g. redis://127.0.0.1:6390/0)")

app = Celery("clisc_bench", broker=_redis_url, backend=_redis_url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Defaults otherwise (prefetch multiplier 4, early ack): the baseline is stock Celery, only
    # cluster chatter that a one-machine bench does not need is off (see the worker flags).
    worker_hijack_root_logger=False,
    broker_connection_retry=True,
)


@app.task(name="bench.noop")
def noop(i):
    return i
