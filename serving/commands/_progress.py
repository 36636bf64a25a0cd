"""`progress`: the progress lines of the long commands, on stderr with the time elapsed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def progress(command: str) -> Callable[[str], None]:
    """A ``log`` callable for the library functions that report their stages: each line goes
    to stderr at once, as ``riskgraph <command> [  12.3s] <line>``.

    Args:
        command (str): the command's name, e.g. ``"simulate"``.
    """
    start = time.perf_counter()

    def say(line: str) -> None:
        print(f"riskgraph {command} [{time.perf_counter() - start:6.1f}s] {line}",
              file=sys.stderr, flush=True)

    return say
