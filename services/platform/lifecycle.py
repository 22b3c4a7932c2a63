"""Process lifetime: children die with their parent, and a service stops within a deadline of SIGTERM.

- ``die_with_parent(parent_pid)`` is a ``preexec_fn`` for ``subprocess.Popen``: it asks Linux
  (``prctl(PR_SET_PDEATHSIG)``) to send the child SIGTERM when the thread that started it exits,
  and exits at once if that parent is already gone (the race between fork and prctl). Without
  it, a SIGKILLed supervisor left eligibility, calculation and budget running for 28 minutes,
  retrying a broker that was gone (issue 15). Note: the signal follows the *thread* that
  forked the child; the supervisor starts and restarts services from threads that live as long
  as it does.
- ``arm_exit_deadline(grace_s)`` is called from a SIGTERM/SIGINT handler: a daemon thread ends
  the process with ``os._exit`` if the graceful stop has not finished within ``grace_s``.
  Faust's worker waits for its consumer and producer to stop, and with the broker gone they
  retry for minutes; a service is at-least-once, so exiting hard replays the uncommitted tail.
- ``install_stop_deadline()`` chains that onto whatever handlers the framework installed
  (asyncio's loop handlers still run: the C-level signal handler writes the wakeup fd
  whichever Python handler is set).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
#: A service exits within this many seconds of SIGTERM (`DOPOMOGA_STOP_GRACE`); orchestrators
#: (docker compose, the supervisor) SIGKILL after 10 s.
STOP_GRACE_S = float(os.environ.get("DOPOMOGA_STOP_GRACE", "8"))

_armed = threading.Event()


def _prctl_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent (``parent_pid``, default: the caller) dies."""
    parent = os.getpid() if parent_pid is None else parent_pid

    def preexec() -> None:
        _prctl_pdeathsig(sig)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os._exit(1)

    return preexec


def arm_exit_deadline(grace_s: float = STOP_GRACE_S, code: int = 0) -> None:
    """End the process in ``grace_s`` seconds unless it has exited by then (idempotent)."""
    if _armed.is_set():
        return
    _armed.set()

    def deadline() -> None:
        try:
            sys.stderr.write(f'{{"event": "stop_deadline", "grace_s": {grace_s}, "level": "warning"}}\n')
            sys.stderr.flush()
        finally:
            os._exit(code)

    timer = threading.Timer(grace_s, deadline)
    timer.daemon = True
    timer.start()


def install_stop_deadline(grace_s: float = STOP_GRACE_S, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Arm the deadline on the first of ``signals``, then run the handler that was installed before."""
    for sig in signals:
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            arm_exit_deadline(grace_s)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)
