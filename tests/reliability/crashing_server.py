"""``python -m pcref_mcp`` that kills itself (SIGKILL) at one write step, named by the first argument
(``before_send`` or ``after_send``): the crash tests' server, through the write engine's
fault-injection seam (``pcref_mcp.writes.engine.STEP_HOOKS``). The remaining arguments go to the CLI."""

from __future__ import annotations

import os
import signal
import sys

from pcref_mcp.cli import main
from pcref_mcp.writes.engine import STEP_HOOKS


def kill_at(point: str) -> None:
    def hook(step: str) -> None:
        if step == point:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
            os._exit(137)  # not reached where SIGKILL exists

    STEP_HOOKS.append(hook)


if __name__ == "__main__":
    kill_at(sys.argv[1])
    sys.argv[1:] = sys.argv[2:]
    raise SystemExit(main())
