"""`die_with_parent`: a forked helper process ends when the process that forked it ends.

A child forked by :mod:`multiprocessing` (the GNN scorer's) outlives a parent killed with
``kill -9``: nothing closes its pipe, since the child holds a copy of both ends (fork copies
every descriptor), and its daemon flag only matters to a parent that exits cleanly. Each such
orphan keeps the model and the graph (~650 MB).

NOTE: not ``prctl(PR_SET_PDEATHSIG)``: Linux sends that signal when the *thread* that forked
the child ends, not the process, and the child may be forked from a request thread (the first
verdict builds the GNN's graph state when the store was down at start) that the server's
thread pool retires after a few idle seconds; the child would be killed under a live parent.
A watcher thread in the child instead waits on a pidfd of the parent (Linux 5.3+; polls the
parent id elsewhere), which ends exactly with the process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import threading
from typing import Final

POLL_S: Final = 0.2
"""How often the parent is checked where no pidfd can be waited on."""


def die_with_parent(parent_pid: int | None = None) -> None:
    """End this process (``os._exit``) as soon as ``parent_pid`` has ended.

    Call it first thing in the child. It returns at once; a daemon thread watches the parent.
    A parent that ended between the fork and this call ends the child here.

    Args:
        parent_pid (int, optional): the process that forked this one.
            (default: the pid :mod:`multiprocessing` recorded in the parent before the fork)

    Raises:
        RuntimeError: without ``parent_pid`` in a process :mod:`multiprocessing` did not start.
    """
    if parent_pid is None:
        parent = mp.parent_process()
        if parent is None or parent.pid is None:
            raise RuntimeError("die_with_parent: not a multiprocessing child; pass parent_pid")
        parent_pid = parent.pid
    pidfd = _pidfd(parent_pid)
    # NOTE: after the pidfd is held, a parent id still ours proves the pidfd is our parent's
    # (not a later process that reused a dead parent's id); before it, the parent may already
    # have died and this process been adopted by init.
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, pidfd), name="die-with-parent",
                     daemon=True).start()


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None  # gone already (the check after catches it) or pidfds not allowed


def _watch(parent_pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        # NOTE: a pidfd turns readable when its process ends.
        select.select([pidfd], [], [])
    else:
        stop = threading.Event()
        while os.getppid() == parent_pid:
            stop.wait(POLL_S)
    os._exit(1)
