"""`use_batch_policy`: `riskgraph serve` puts itself under SCHED_BATCH before any thread starts,
so that every thread and process it starts later runs under it; off, the policy is untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import os, sys, threading
from serving.commands.serve import use_batch_policy
print(use_batch_policy(sys.argv[1] == "on"))
seen = []
t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(os.sched_getscheduler(0))
_, status = os.waitpid(pid, 0)
print(os.sched_getscheduler(0), seen[0], os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
@pytest.mark.parametrize("switch", ["on", "off"])
def test_the_policy_reaches_later_threads_and_forked_processes_only_when_on(switch):
    out = subprocess.run([sys.executable, "-c", _PROBE, switch], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()

    want = os.SCHED_BATCH if switch == "on" else os.SCHED_OTHER
    assert out == [str(switch == "on"), str(want), str(want), str(want)]
