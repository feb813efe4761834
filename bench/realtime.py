"""Real-time priority for the processes of one open-loop run: the host's scheduler left out.

On a small host shared by the generator, the server and Postgres, the scheduler sets much of the
tail: a process woken by a request or an answer may wait for another to finish its time slice,
or for a kernel thread. Those waits land on the generator too, which then reads answers late. With
every process of the run at the same SCHED_FIFO priority, each runs as soon as it is woken and
keeps the core until it waits again, so the p99 is what the code does, not the host.

Linux only, and it needs root or CAP_SYS_NICE (`allowed()`). The kernel keeps 5% of every second
for everything else (`sched_rt_runtime_us`), and a run lasts seconds at half load.
"""

import contextlib
import os
from collections.abc import Iterable, Iterator

import psutil

# The lowest real-time priority: above every normal task, below the kernel's own real-time threads.
PRIORITY = 1


def allowed() -> bool:
    """Whether this process may give itself (and so its run's processes) real-time priority."""
    if not hasattr(os, "SCHED_FIFO"):
        return False
    try:
        with realtime([os.getpid()]):
            return True
    except PermissionError:
        return False


@contextlib.contextmanager
def realtime(pids: Iterable[int]) -> Iterator[None]:
    """Every thread of `pids` at SCHED_FIFO for the block, then back to the normal policy."""
    changed: list[int] = []
    try:
        for pid in pids:
            for thread in psutil.Process(pid).threads():
                with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                    os.sched_setscheduler(thread.id, os.SCHED_FIFO, os.sched_param(PRIORITY))
                    changed.append(thread.id)
        yield
    finally:
        for thread_id in changed:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setscheduler(thread_id, os.SCHED_OTHER, os.sched_param(0))
