"""Child processes of the runtime bench: started in their own process group, always reaped.

Every server and worker the bench starts goes through ProcessSet, so one stop_all() (run from
`finally`, atexit and the SIGINT/SIGTERM handlers) ends all of them, including the children they
fork themselves (Celery's prefork pool), by signalling whole process groups. Children also get
PR_SET_PDEATHSIG, so a driver killed with SIGKILL still takes its direct children down.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass  # not Linux/glibc: the process-group cleanup still applies


def free_loopback_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout_s, proc=None, name="server"):
    """Waits until something accepts on 127.0.0.1:port; fails early if `proc` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening on "
                               f"127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


class ProcessSet:
    """Owns the processes it started; stop_all() is idempotent and safe from signal handlers."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self._procs = []  # (name, Popen, log file)

    def start(self, name, argv, env=None, cwd=None):
        os.makedirs(self.log_dir, exist_ok=True)
        log = open(os.path.join(self.log_dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True, preexec_fn=_die_with_parent)
        self._procs.append((name, proc, log))
        return proc

    def log_path(self, name):
        return os.path.join(self.log_dir, f"{name}.log")

    def exited(self):
        """Names of started processes that have already ended."""
        return [name for name, p, _ in self._procs if p.poll() is not None]

    def stop(self, proc, grace_s=5.0):
        """Ends `proc` and its process group: SIGTERM, then SIGKILL after grace_s."""
        with _signals_blocked():
            for entry in list(self._procs):
                if entry[1] is proc:
                    self._stop_group(proc, grace_s)
                    entry[2].close()
                    self._procs.remove(entry)

    def stop_all(self, grace_s=5.0):
        # A second Ctrl-C must not cut the cleanup short: it is delivered when this returns.
        with _signals_blocked():
            self._stop_all(grace_s)

    def _stop_all(self, grace_s):
        procs, self._procs = self._procs, []
        for _, p, _ in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _, p, _ in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, p, log in procs:
            # The group leader may be gone while forked children of it linger: always SIGKILL
            # the group once the grace period is over.
            _signal_group(p, signal.SIGKILL)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            log.close()

    def _stop_group(self, p, grace_s):
        _signal_group(p, signal.SIGTERM)
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(p, signal.SIGKILL)
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass


@contextlib.contextmanager
def _signals_blocked():
    stop_signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _signal_group(p, sig):
    try:
        os.killpg(p.pid, sig)  # start_new_session=True made pid the group id
    except (ProcessLookupError, PermissionError):
        pass
