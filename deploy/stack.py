"""Start and stop the whole team stack on loopback, for the recipe, the tests and the benchmark.

One shared sandbox (``pcref-mcp sandbox``: the Partner Center stand-in every replica calls), the
store (PostgreSQL in a cluster of its own, or a SQLite file for the one-replica baseline), N
stateless replicas and nginx in front of them. With ``team=True`` (what a team deploys) the replicas
are ``pcref-mcp team`` resource servers and one stand-in identity provider signs in ``people``
people (:mod:`deploy.team`); with ``proxy=True`` as well they are the OAuth authorization server too
(proxy mode, at nginx's URL: clients register and sign in through nginx, any replica serving any
step); without ``team``, they are ``pcref-mcp serve --http`` with one static bearer. nginx logs which
replica served each request (:meth:`Stack.served`).
Every process is ours (started here, stopped by its pid, and reaped as soon as it exits, also when
something else killed it: a zombie would look alive to the journal's liveness check); every port is
on 127.0.0.1. Ports are picked free (or given: ``port_base``), and a process that finds its port
taken in the moment between the pick and its bind is started again on another (a replica's new port
before nginx names it), so the stack runs beside other services.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import httpx

from deploy.postgres import Postgres, free_port
from deploy.team import TeamIdentity

__all__ = ["PortTaken", "Served", "Stack", "nginx_binary"]

HERE = Path(__file__).resolve().parent
# The single-user HTTP mode's bearer for this stack (a fresh one per process; printed by `deploy up`).
# Team mode (`pcref-mcp team`) puts each person's own sign-in in front instead.
BEARER = secrets.token_urlsafe(24)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


@dataclass(frozen=True)
class Served:
    """One request as nginx's access log has it: which replica answered (None: none did), and every
    replica it was sent to (more than one when a replica refused the connection)."""

    method: str
    path: str
    status: int
    replica: int | None
    tried: tuple[int, ...]


@dataclass
class Stack:
    root: Path
    replicas: int = 3
    store: str = "postgresql"  # or "sqlite" (one replica, no proxy)
    port: int | None = None  # nginx's (or the single replica's) port
    sandbox_size: int = 200
    rate_limit_calls: int = 100
    rate_limit_window: float = 60.0
    team: bool = False  # replicas in team mode: each person signs in, Partner Center on their behalf
    people: int = 50  # the people the team's identity provider knows (team mode)
    proxy: bool = False  # team mode's proxy mode: the replicas are the OAuth authorization server too
    extra_env: dict[str, str] = field(default_factory=dict)
    # Given ports instead of picked ones: the sandbox on port_base, PostgreSQL on port_base + 1, the
    # replicas from port_base + 2 (the operator knows these are free).
    port_base: int | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.key = secrets.token_urlsafe(32)
        self.metrics_token = secrets.token_urlsafe(24)
        base = self.port_base
        self.sandbox_port = base if base else free_port()
        self.replica_ports = [base + 2 + i if base else free_port() for i in range(self.replicas)]
        self.proxied = self.store == "postgresql"
        self.port = self.port or (free_port() if self.proxied else self.replica_ports[0])
        self._reaper: threading.Thread | None = None
        self._stopping = threading.Event()
        self.reaped: list[tuple[str, int, int]] = []  # (what, pid, exit status) of every child reaped
        self._left: list[subprocess.Popen[bytes]] = []  # killed and deliberately left unreaped (tests)
        self.postgres: Postgres | None = None
        self.database_url: str | None = None
        self._sandbox: subprocess.Popen[bytes] | None = None
        self._replicas: dict[int, subprocess.Popen[bytes]] = {}
        self._nginx: subprocess.Popen[bytes] | None = None
        if self.proxy and not self.team:
            raise ValueError("proxy mode is a team mode: Stack(team=True, proxy=True)")
        self.identity = TeamIdentity(self.root, self.people, proxy=self.proxy) if self.team else None

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def control_token(self) -> str:
        return (self.root / "sandbox.db.control-token").read_text().strip()

    def token(self, person: int = 0) -> str:
        """The bearer person ``person`` (0-based) sends: their own access token in team mode, else
        the one static token every caller shares."""
        return self.identity.token(person) if self.identity is not None else BEARER

    def principal(self, person: int) -> str:
        """The principal id the journal records for person ``person`` (team mode: their oid)."""
        return self.identity.people[person].oid if self.identity is not None else "local"

    def served(self) -> list[Served]:
        """Every request nginx passed on so far, in order, with the replica (index) that answered it."""
        log = self.root / "nginx" / "access.log"
        index = {f"127.0.0.1:{p}": i for i, p in enumerate(self.replica_ports)}
        served: list[Served] = []
        for line in log.read_text().splitlines() if log.exists() else []:
            _, method, status, upstream, path = line.split("|")[:5]  # nginx.conf.template's log_format
            # "a, b" when nginx passed the request on; the upstream's name when no replica was tried
            tried = [index[a] for a in upstream.replace(",", " ").split() if a in index]
            served.append(Served(method, path, int(status), tried[-1] if tried else None, tuple(tried)))
        return served

    # -- life -----------------------------------------------------------------------------------------

    def start(self) -> Stack:
        self._stopping.clear()
        self._reaper = threading.Thread(target=self._reap, name="stack-reaper", daemon=True)
        self._reaper.start()
        try:
            if self.identity is not None:
                self.identity.start()
            self._start_sandbox()
            if self.store == "postgresql":
                self.postgres = self._postgres()
                self.database_url = self.postgres.create_database("pcref")
            self._start_replicas(list(range(self.replicas)))
            if self.proxied:
                self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.reap_left()
        # nginx and the replicas asked at once, then waited for (each replica's drain, its announcement
        # and its calls in flight, alongside the others' instead of one after another); then the
        # sandbox, which those calls may still need
        _terminate([self._nginx, *self._replicas.values()])
        _terminate([self._sandbox])
        self._replicas.clear()
        if self._reaper is not None:
            self._reaper.join(5)
            self._reaper = None
        if self.postgres is not None:
            self.postgres.remove()
            self.postgres = None
        if self.identity is not None:
            self.identity.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------------------

    def kill_replica(self, index: int, *, reap: bool = True) -> int:
        """SIGKILL: no shutdown, no outcome recorded for what it was sending. ``reap=False`` leaves it
        a zombie (as a parent that never waits would; the journal must see it gone all the same)
        until :meth:`reap_left` or :meth:`stop`. Returns its pid."""
        proc = self._replicas.pop(index)
        proc.send_signal(signal.SIGKILL)
        if reap:
            proc.wait(10)
        else:
            self._left.append(proc)
        return proc.pid

    def reap_left(self) -> None:
        """Collect the replicas :meth:`kill_replica` left unreaped."""
        while self._left:
            self._left.pop().wait(10)

    def restart_replicas(self, **settings: int | float) -> None:
        """Every replica killed, then all started again together, with ``rate_limit_calls`` /
        ``rate_limit_window`` changed if given (they are stateless: what they knew is in the store)."""
        for name, value in settings.items():
            if name not in ("rate_limit_calls", "rate_limit_window"):
                raise TypeError(f"restart_replicas() does not change {name}")
            setattr(self, name, value)
        for index in range(self.replicas):
            if index in self._replicas:
                self.kill_replica(index)
        self._start_replicas(list(range(self.replicas)))

    def stop_replica(self, index: int) -> int:
        """SIGTERM, as an orchestrator stops it: the replica drains (pcref_mcp.ops.drain) and exits;
        its exit status: 0 when it drained cleanly, 1 when it gave up on calls in flight at
        ``PCREF_DRAIN_SECONDS`` (:func:`pcref_mcp.ops.drain.exit_status`)."""
        proc = self._replicas.pop(index)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(60)

    def rolling_restart(self) -> list[int]:
        """Every replica stopped (SIGTERM) and started again, one at a time, each back and ready
        (``/readyz``) before the next goes: the way a new version is rolled out. Their exit codes."""
        codes = []
        for index in range(self.replicas):
            if index in self._replicas:
                codes.append(self.stop_replica(index))
            self.start_replica(index)
        return codes

    def replica_url(self, index: int, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.replica_ports[index]}{path}"

    def start_replica(self, index: int) -> None:
        self._start_replicas([index])

    def _start_replicas(self, indexes: list[int]) -> None:
        """Started together (as an orchestrator starts them; migrations take an advisory lock), then
        each waited for until ready: its store reachable and migrated (``/readyz``), not merely
        listening. One that found its port taken starts again on another, until nginx names it."""
        for attempt in range(PORT_ATTEMPTS):
            for index in indexes:
                self._launch_replica(index)
            taken = []
            for index in indexes:
                port, path = self.replica_ports[index], self.root / f"replica-{index}.log"
                try:
                    _wait_http(f"http://127.0.0.1:{port}/readyz", self._replicas[index], path, ready=True)
                except PortTaken:
                    if self._nginx is not None or self.port_base or attempt == PORT_ATTEMPTS - 1:
                        raise  # nginx names this port already (or it was given): not ours to move
                    self.replica_ports[index] = free_port()
                    taken.append(index)
            if not taken:
                return
            indexes = taken

    def _launch_replica(self, index: int) -> None:
        port = self.replica_ports[index]
        # team mode: `pcref-mcp team` (people's tokens); else single-user `serve --http` (one bearer)
        command = ["team"] if self.team else ["serve", "--http"]
        with (self.root / f"replica-{index}.log").open("ab") as log:
            self._replicas[index] = subprocess.Popen(
                [sys.executable, "-m", "pcref_mcp", *command, "--host", "127.0.0.1", "--port", str(port)],
                env=self._replica_env(index),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def restart_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.restart()

    def sandbox_faults(self, **faults: object) -> None:
        """Set the shared sandbox's injected faults (``latency_ms``, ``error_rate``…; ``clear=True``)."""
        response = httpx.post(
            f"{self.sandbox_url}/_sandbox/faults",
            json=faults,
            headers={"X-Sandbox-Control": self.control_token},
            timeout=10,
        )
        response.raise_for_status()

    def sandbox_pid(self) -> int | None:
        """The standalone sandbox's pid (Partner Center's stand-in)."""
        return self._sandbox.pid if self._sandbox is not None else None

    def nginx_pid(self) -> int | None:
        """The nginx master's pid (its workers are its children), or None without a proxy."""
        return self._nginx.pid if self._nginx is not None else None

    def replica_pids(self) -> dict[int, int]:
        return {i: p.pid for i, p in self._replicas.items()}

    def replica_running(self, index: int) -> bool:
        """Whether replica ``index`` runs (a replica killed from outside is reaped, and not)."""
        proc = self._replicas.get(index)
        return proc is not None and proc.poll() is None

    # -- private --------------------------------------------------------------------------------------

    def _replica_env(self, index: int) -> dict[str, str]:
        home = self.root / f"home-{index}"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
        env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CONFIG_HOME=str(home / "config"),
            PCREF_SANDBOX_PROFILE=os.environ.get("PCREF_SANDBOX_PROFILE", "lenient"),
            PCREF_BACKEND="sandbox",
            PCREF_BASE_URL=f"{self.sandbox_url}/v1.0/engagements/",
            PCREF_HTTP_STATELESS="1",
            PCREF_STORE_KEY=self.key,
            PCREF_RATE_LIMIT_CALLS=str(self.rate_limit_calls),
            PCREF_RATE_LIMIT_WINDOW=str(self.rate_limit_window),
            PCREF_LOG_LEVEL="WARNING",
            # the workload approves its writes by confirm token (a load generator has no person to
            # click the approval page); a real team server defaults to "strictest" (README, safety model)
            PCREF_APPROVAL_POLICY=os.environ.get("PCREF_APPROVAL_POLICY", "token"),
            PCREF_METRICS_TOKEN=self.metrics_token,  # each replica's /metrics, scraped at its own port
        )
        if self.identity is not None:
            env.update(self.identity.replica_env(f"http://127.0.0.1:{self.port}"))
        else:
            env["PCREF_HTTP_BEARER_TOKEN"] = BEARER
        if self.store == "postgresql":
            assert self.database_url is not None
            env["PCREF_STORE_URL"] = self.database_url
        else:
            env["PCREF_STORE_URL"] = f"sqlite:///{self.root / 'store.sqlite3'}"
        env.update(self.extra_env)
        return env

    def _reap(self) -> None:
        """Collect every child that exited, whoever ended it, so none lingers as a zombie."""
        while not self._stopping.wait(REAP_EVERY):
            children = [("nginx", self._nginx), ("sandbox", self._sandbox)]
            children += [(f"replica-{i}", p) for i, p in list(self._replicas.items())]
            for what, proc in children:
                if proc is not None and proc.returncode is None and proc.poll() is not None:
                    self.reaped.append((what, proc.pid, proc.returncode))
                    print(
                        f"stack: {what} (pid {proc.pid}) exited ({proc.returncode})",
                        file=sys.stderr,
                        flush=True,
                    )

    def _postgres(self) -> Postgres:
        """PostgreSQL on its port; on another when the picked one was taken in the meantime."""
        for attempt in range(PORT_ATTEMPTS):
            postgres = Postgres(port=(self.port_base + 1) if self.port_base else None)
            try:
                postgres.start()
                return postgres
            except RuntimeError as exc:  # pg_ctl failed; its log's tail is in the message
                postgres.remove()
                taken = any(m in str(exc).lower() for m in _IN_USE)
                if self.port_base or not taken or attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _start_sandbox(self) -> None:
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_sandbox_once()
                return
            except PortTaken:
                if self.port_base or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.sandbox_port = free_port()

    def _start_sandbox_once(self) -> None:
        log = (self.root / "sandbox.log").open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
        env["PCREF_SANDBOX_PROFILE"] = os.environ.get("PCREF_SANDBOX_PROFILE", "lenient")
        self._sandbox = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pcref_mcp",
                "sandbox",
                "--port",
                str(self.sandbox_port),
                "--db",
                str(self.root / "sandbox.db"),
                "--reset",
                "--size",
                str(self.sandbox_size),
                "--rate-limit",
                "0",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _wait_http(f"{self.sandbox_url}/v1.0/engagements/referrals", self._sandbox, self.root / "sandbox.log")

    def _start_nginx(self) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        run = self.root / "nginx"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (run / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)
        upstreams = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.replica_ports
        )
        conf = Template((HERE / "nginx.conf.template").read_text()).safe_substitute(
            RUN=str(run), UPSTREAMS=upstreams, LISTEN=f"127.0.0.1:{self.port}"
        )
        path = run / "nginx.conf"
        path.write_text(conf)
        log = (self.root / "nginx.log").open("ab")
        self._nginx = subprocess.Popen(
            [binary, "-c", str(path), "-p", str(run), "-e", str(run / "nginx-error.log")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _wait_http(self.url, self._nginx, run / "nginx-error.log")


def _terminate(procs: list[subprocess.Popen[bytes] | None]) -> None:
    """SIGTERM to every one still running, then wait for each (SIGKILL after 10 s)."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


PORT_ATTEMPTS = 3
REAP_EVERY = 0.2  # seconds between looks for children that exited


class PortTaken(RuntimeError):
    """The process could not bind its port: something else took it after it was picked."""


_IN_USE = ("address already in use", "errno 98", "could not bind", "eaddrinuse")


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0, *, ready: bool = False
) -> None:
    """Until ``url`` answers (``ready``: answers 200). One client for all the tries: each
    ``httpx.get`` would build a client and its TLS context, about 30 ms of CPU, ten times a second;
    no connection kept alive, so each try is a fresh connection as before."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                kind = PortTaken if any(m in text.lower() for m in _IN_USE) else RuntimeError
                raise kind(f"{url}: the process exited ({proc.returncode}):\n{text}")
            try:
                answer = http.get(url)
                if not ready or answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
