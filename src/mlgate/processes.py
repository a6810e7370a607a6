"""Who is still there: the one rule for deciding that the process behind a record is gone.

Jobs name the process that runs them, and the artifact journal the process that writes, as
``host:pid``. On this host the pid decides (a live pid says more than a late heartbeat: a busy
training may hold the interpreter for a while); on another host, or for a name that is not
``host:pid``, only silence decides: nothing heard for longer than `stale_after`.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta


def this_process() -> str:
    """This process, as records name their writer: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(owner: str, last_heard: datetime, now: datetime, stale_after: timedelta) -> bool:
    """Whether the process named `owner` is gone; `last_heard` is when it last said anything."""
    if not owner:
        return True  # written before records named their process: by one process, since restarted
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdecimal():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, and someone else's
        return False
    return now - last_heard > stale_after
