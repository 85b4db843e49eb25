"""Child processes: they cannot outlive their parent (even a SIGKILLed one), and the exit status
that tells a supervisor not to start one again."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
# A process that exits with this stopped on purpose and must not be restarted until someone has
# looked (ingest's dead-letter limit: restarting it would only stop it again).
EXIT_DO_NOT_RESTART = 3


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel sends SIGTERM to the child when its parent dies, and the
    child gets its own process group so a terminal's Ctrl-C reaches the parent only (which then
    stops its children in order)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()
