"""Graceful stop: SIGTERM drains a replica within a bounded time, so a rolling restart loses nothing.

On the first SIGTERM (or Ctrl+C) the replica keeps serving for ``PCREF_DRAIN_ANNOUNCE_SECONDS`` (1)
while it says it is going: ``/readyz`` answers 503 ``draining`` (an orchestrator stops routing to it) and
every response carries ``Connection: close`` (nginx drops its idle keep-alive connections to it, so
no new call can be sent on one just as it closes). Then uvicorn stops listening (nginx's next
attempt is refused and passed to another replica, which it does even for a POST: nothing was sent)
and waits for the calls in flight, at most ``PCREF_DRAIN_SECONDS``. Then the app's lifespan ends:
the journal records outcomes it kept and marks any write of this process still pending as in doubt
(it will not learn their outcome any more: :meth:`Journal.release`), so ``settle_in_doubt`` decides
them at once instead of after the lease runs out. A second signal stops at
once, as uvicorn always did.

The exit status says how the stop went: 0 when the drain completed (every call in flight finished),
1 when it had to give up at ``PCREF_DRAIN_SECONDS`` (uvicorn cancelled what was left; those writes
are in doubt) or a second signal cut it short. uvicorn re-raises the signal it handled once it has
shut down (so the process would die of it: 143), into the handler that was there before it started;
:func:`serve` puts a quiet one there while it runs, so the status is the drain's.

uvicorn's public ``Server``/``Config`` and its ``handle_exit`` hook are all this needs, and
sse-starlette's documented switch that keeps streams in flight open until they finish.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = ["serve"]

log = logging.getLogger("pcref_mcp.ops")


def serve(app: Any, settings: Settings, *, host: str, port: int) -> int:
    """Run ``app`` (an :class:`~pcref_mcp.ops.gate.OpsGate`, or any ASGI app) until stopped, draining;
    the exit status (0: drained cleanly, 1: gave up on calls in flight)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_seconds) or 1,
        log_config=None,  # our logging (text or JSON lines) is already set up
    )
    _keep_streams_open_while_draining()
    server = _draining_server(config, app, announce=settings.drain_announce_seconds)
    with _signals_handled_by(server):
        server.run()
    return exit_status(server, app)


def exit_status(server: Any, app: Any) -> int:
    """0 when the stop drained cleanly; 1 when uvicorn cancelled calls in flight at the drain deadline
    (the gate counts them: ``abandoned``) or a second signal forced the exit."""
    abandoned = int(getattr(app, "abandoned", 0))
    if abandoned or server.force_exit:
        log.error(
            "stopped without finishing %d call(s) in flight (drain deadline or a second signal)", abandoned
        )
        return 1
    return 0


@contextmanager
def _signals_handled_by(server: Any) -> Iterator[None]:
    """While uvicorn runs, SIGTERM and SIGINT are uvicorn's (it installs its own over these); when it
    has shut down it re-raises them into the handlers it found, which here only note them, so the
    process exits with :func:`exit_status` instead of dying of the signal (or of a caller's handler
    that turns it into ``SystemExit(143)``)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (uvicorn then installs none either)
        return

    def noted(sig: int, frame: Any) -> None:
        log.info("signal %s: the server has stopped", sig)

    previous = {sig: signal.signal(sig, noted) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _keep_streams_open_while_draining() -> None:
    """The SDK answers a call as a server-sent-event stream (sse-starlette), and sse-starlette ends
    every open stream the moment uvicorn is asked to exit: a call in flight would lose its answer
    (its write landed, its person never hears). Its documented switch turns that off for this
    process; uvicorn's graceful timeout still bounds the wait, then cancels what is left."""
    try:
        from sse_starlette.sse import AppStatus
    except ImportError:  # pragma: no cover - the SDK depends on it
        return
    AppStatus.disable_automatic_graceful_drain()


def _draining_server(config: Any, app: Any, *, announce: float) -> Any:
    """uvicorn's server, whose first signal starts the drain: ``announce`` seconds serving on, unready
    and closing connections (none: straight on), before the listener closes."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            begin = getattr(app, "begin_drain", None)
            if self.should_exit or getattr(app, "draining", True) or begin is None:
                timer = getattr(self, "announcing", None)
                if timer is not None:
                    timer.cancel()
                super().handle_exit(sig, frame)  # a second signal, or nothing to announce: as before
                return
            begin()
            log.warning(
                "stopping: draining (unready, closing connections), then finishing the calls in flight "
                "within %s s",
                config.timeout_graceful_shutdown,
            )
            if announce <= 0:  # nothing routes to it (PCREF_DRAIN_ANNOUNCE_SECONDS=0): stop listening now
                super().handle_exit(sig, frame)
                return
            self.announcing = threading.Timer(announce, super().handle_exit, args=(sig, frame))
            self.announcing.daemon = True
            self.announcing.start()

    return DrainingServer(config)
