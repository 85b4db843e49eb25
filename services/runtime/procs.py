"""Child processes that cannot outlive their parent, even when the parent is SIGKILLed."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel sends SIGTERM to the child when its parent dies, and the
    child gets its own process group so a terminal's Ctrl-C reaches the parent only (which then
    stops its children in order)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()
