"""A forked helper process must not outlive the API process (kill -9 leaves no orphans)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Final

_PR_SET_PDEATHSIG: Final = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this (forked) process when its parent dies, for any reason.

    Args:
        parent_pid (int): the pid of the process that forked this one, read before the fork.

    NOTE: Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere a no-op. The parent may have died
    between the fork and the ``prctl`` call, which then never fires: the check of the parent
    pid afterwards closes that window.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os._exit(0)
