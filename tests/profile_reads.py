"""Which tests can see the sandbox profile: recorded in one run, so the other profile runs only those.

``make unit`` runs the sandbox-facing directories (the Makefile's ``SANDBOX_TESTS``) under both
sandbox profiles. A test that never reads the profile passes or fails the same under both, so the
strict run skips it. Which tests those are is recorded, never guessed: with
``PCREF_PROFILE_SPLIT=record`` (the lenient run) this plugin notes every read of the profile and who
made it, and at the end compares the tests of ``PCREF_SANDBOX_TESTS`` that read it with the manifest,
tests/profile_readers.txt (``PCREF_UPDATE_SNAPSHOTS=1`` rewrites it); with
``PCREF_PROFILE_SPLIT=readers`` (the strict run) the tests of those directories that the manifest
does not name are deselected. Without the switch nothing changes: a run by hand runs everything.

A read is any of these, noted for the test running (setup, call or teardown), for every fixture being
set up or torn down (a module- or session-scoped fixture that reads counts for every test using it),
for the collector collecting (``pytest_generate_tests``), and for every module whose top-level code is
executing (a module that reads on import counts for every test in it, in the modules that import it,
and, for a conftest, in its directory):

- the environment variable: ``os.environ[...]``, ``.get``, ``in`` (``default_profile()``,
  ``load_settings``, deploy/), and ``{**os.environ}``/``dict(os.environ)`` (whole-environment copies
  through ``.items()``/``.copy()`` are not reads: the proxies lookup every HTTP client makes does one);
- a process started that inherits the environment or is given the variable (``subprocess``,
  ``os.posix_spawn``/``exec*``/``spawn*``/``system``/``fork``, and the fork_exec multiprocessing uses);
- any use of a :class:`SandboxConfig`'s default profile (compared, hashed, formatted, sliced, its
  methods...): it is a :class:`RecordingProfile`, so state cached across tests under a key that
  includes the profile (a seeded template) counts when looked up.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib._bootstrap as _bootstrap
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

VAR = "PCREF_SANDBOX_PROFILE"
SWITCH = "PCREF_PROFILE_SPLIT"  # record (the run that checks the manifest) | readers (the other run)
DIRS = "PCREF_SANDBOX_TESTS"  # the Makefile's SANDBOX_TESTS, space-separated
MANIFEST = Path("tests") / "profile_readers.txt"  # relative to the rootdir
HEADER = (
    "# The tests of the Makefile's SANDBOX_TESTS that read the sandbox profile (recorded by\n"
    "# tests/profile_reads.py in make unit's lenient run); the strict run runs only these of them.\n"
    "# Generated: make profile-readers (or PCREF_UPDATE_SNAPSHOTS=1 make unit).\n"
)


class Recorder:
    """Who is running now, and who has read the profile. One per process; active while a run records."""

    def __init__(self) -> None:
        self.active = False
        self.root = Path.cwd()
        self.item: Any = None
        self.collector: Any = None
        self.fixtures: list[Any] = []  # fixture definitions being set up or torn down, innermost last
        self.items: set[str] = set()  # node ids that read
        self.fixturedefs: set[Any] = set()
        self.collectors: set[str] = set()
        self.modules: set[str] = set()  # files whose top-level code was running during a read
        self.ours: dict[str, bool] = {}
        self.unattributed: list[str] = []

    def read(self) -> None:
        if not self.active:
            return
        if self._started_by():
            return
        attributed = False
        if self.item is not None:
            self.items.add(self.item.nodeid)
            attributed = True
        if self.fixtures:
            self.fixturedefs.update(self.fixtures)
            attributed = True
        if self.collector is not None:
            self.collectors.add(self.collector.nodeid)
            attributed = True
        # The profile is read on every sandbox request: walk the stack for a module's top level only
        # when one can be running (outside a test, or a module being imported: it holds a lock).
        frame: Any = sys._getframe(1) if self.item is None or _bootstrap._module_locks else None
        while frame is not None:
            code = frame.f_code
            if code.co_name == "<module>":  # a module's top level is running (being imported)
                name = code.co_filename
                self.modules.add(name)
                ours = self.ours.get(name)
                if ours is None:  # only this repository's modules count as someone
                    path = Path(name)
                    ours = self.ours[name] = path.is_relative_to(self.root) and ".venv" not in path.parts
                attributed = attributed or ours
            frame = frame.f_back
        if not attributed and len(self.unattributed) < 5:
            self.unattributed.append("".join(traceback.format_stack(limit=12)[:-1]))

    def _started_by(self) -> bool:
        """Charge a read on a thread that a test or fixture started to them: a server thread that
        outlives its test by a moment reads for that test, not for whichever test runs next (which is
        charged too only when it is in the same module, where it may share the thread through a
        broader fixture)."""
        owner = getattr(threading.current_thread(), "_pcref_started_by", None)
        if owner is None:
            return False
        item, fixtures = owner
        if item is not None:
            self.items.add(item.nodeid)
        self.fixturedefs.update(fixtures)
        if self.item is not None and item is not None and self.item.path == item.path:
            self.items.add(self.item.nodeid)
        return True


RECORDER = Recorder()


# --- the sources of a read ------------------------------------------------------------------------


def _recorded(name: str) -> Callable[..., Any]:
    method = getattr(str, name)

    def recorded(self: str, *args: Any) -> Any:
        RECORDER.read()
        return method(self, *args)

    recorded.__name__ = name
    return recorded


class RecordingProfile(str):
    """A profile that notes every use: operators and special methods bypass ``__getattribute__``, so
    each is defined here; named methods (``.upper()``...) go through ``__getattribute__``."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        RECORDER.read()
        return str.__getattribute__(self, name)

    def __radd__(self, other: Any) -> Any:
        RECORDER.read()
        return other + str(self) if isinstance(other, str) else NotImplemented

    def __bool__(self) -> bool:
        RECORDER.read()
        return bool(len(str.__str__(self)))


for _name in (
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__contains__",
    "__getitem__", "__iter__", "__len__", "__add__", "__mul__", "__rmul__", "__mod__", "__rmod__",
    "__format__", "__str__", "__repr__", "__reduce__", "__reduce_ex__", "__getnewargs__", "__sizeof__",
):  # fmt: skip
    setattr(RecordingProfile, _name, _recorded(_name))


class RecordingEnviron(os._Environ):  # type: ignore[type-arg,misc,name-defined]
    """``os.environ`` noting lookups of the profile variable (its class is swapped while recording)."""

    def __getitem__(self, key: Any) -> Any:
        if key == VAR:
            RECORDER.read()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if key == VAR:
            RECORDER.read()
        return super().__contains__(key)

    def _plain(self) -> dict[str, str]:
        return {self.decodekey(k): self.decodevalue(v) for k, v in self._data.items()}

    def copy(self) -> dict[str, str]:
        return self._plain()

    def items(self) -> Any:
        return self._plain().items()

    def values(self) -> Any:
        return self._plain().values()


def _gives_the_variable(env: Any) -> bool:
    """A child started with ``env`` sees the profile: it inherits ours (None) or is given it."""
    if env is None:
        return True
    try:
        keys = [k.split(b"=", 1)[0] if isinstance(k, bytes) else k for k in env]
    except TypeError:
        return True
    return any(k in (VAR, VAR.encode()) for k in keys)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not RECORDER.active:
        return
    if event in ("os.system", "os.fork", "os.forkpty"):
        RECORDER.read()
    elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn") and args:  # noqa: SIM102
        if _gives_the_variable(args[-1]):  # env is the last argument of each
            RECORDER.read()


def _install() -> Callable[[], None]:
    """Put the recording sources in place; return what takes them out again."""
    import _posixsubprocess

    from pcref_mcp.sandbox.config import SandboxConfig

    if not getattr(_audit, "installed", False):  # an audit hook cannot be removed: it checks `active`
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    environ_class = os.environ.__class__
    os.environ.__class__ = RecordingEnviron

    fork_exec = _posixsubprocess.fork_exec

    def recording_fork_exec(*args: Any) -> Any:  # multiprocessing starts processes here, unaudited
        if _gives_the_variable(args[5]):  # (args, executables, close_fds, fds_to_keep, cwd, env, ...)
            RECORDER.read()
        return fork_exec(*args)

    _posixsubprocess.fork_exec = recording_fork_exec

    init = SandboxConfig.__init__
    position = [f.name for f in dataclasses.fields(SandboxConfig)].index("profile")

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if len(args) <= position and "profile" not in kwargs:  # the default: the environment's
            self.profile = RecordingProfile(self.profile)

    SandboxConfig.__init__ = recording_init  # type: ignore[method-assign]

    start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        if RECORDER.item is not None or RECORDER.fixtures:
            self._pcref_started_by = (RECORDER.item, tuple(RECORDER.fixtures))  # type: ignore[attr-defined]
        start(self)

    threading.Thread.start = recording_start  # type: ignore[method-assign]

    def uninstall() -> None:
        threading.Thread.start = start  # type: ignore[method-assign]
        SandboxConfig.__init__ = init  # type: ignore[method-assign]
        _posixsubprocess.fork_exec = fork_exec
        os.environ.__class__ = environ_class

    return uninstall


# --- from reads to tests --------------------------------------------------------------------------


def _imports(path: Path, root: Path) -> set[Path]:
    """The files of this repository a module imports (anywhere in it, lazily too)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    package = path.relative_to(root).parent.parts
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = [p for p in name.split(".") if p]
        for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
            if parts and candidate.is_file():
                found.add(candidate)
    return found


def _tainted(modules: set[Path], files: set[Path], root: Path) -> set[Path]:
    """Of ``files``, those whose import (transitively) runs the top level of a module that read."""
    graph: dict[Path, set[Path]] = {}

    def reaches(path: Path, seen: set[Path]) -> bool:
        if path in modules:
            return True
        if path in seen:
            return False
        seen.add(path)
        if path not in graph:
            graph[path] = _imports(path, root)
        return any(reaches(p, seen) for p in graph[path])

    return {path for path in files if reaches(path, set())}


def _within(path: Path, directories: list[Path]) -> bool:
    return any(path.is_relative_to(d) for d in directories)


class ProfileSplit:
    """The plugin: records in ``record`` mode, deselects in ``readers`` mode."""

    def __init__(self, config: pytest.Config, mode: str) -> None:
        self.config = config
        self.mode = mode
        self.root = config.rootpath
        self.manifest = self.root / MANIFEST
        self.directories = [self.root / d for d in os.environ.get(DIRS, "").split()]
        self.used: dict[str, set[Any]] = {}  # node id -> the fixture definitions it used
        self.items: dict[str, Any] = {}
        self.outcomes: dict[str, bool] = {}  # node id -> every phase passed (so its reads are known)
        self.message = ""
        RECORDER.root = self.root
        RECORDER.ours.clear()

    def known(self) -> set[str]:
        lines = self.manifest.read_text(encoding="utf-8").splitlines() if self.manifest.exists() else []
        return {line for line in lines if line and not line.startswith("#")}

    # readers mode -------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if self.mode != "readers":
            return
        readers = self.known()
        keep, drop = [], []
        for item in items:
            skip = _within(item.path, self.directories) and item.nodeid not in readers
            (drop if skip else keep).append(item)
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # record mode --------------------------------------------------------------------------------

    def pytest_unconfigure(self) -> None:
        global _UNINSTALL
        RECORDER.active = False
        if _UNINSTALL is not None:
            _UNINSTALL()
            _UNINSTALL = None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        outer, RECORDER.collector = RECORDER.collector, collector
        try:
            return (yield)
        finally:
            RECORDER.collector = outer

    @pytest.hookimpl(wrapper=True)
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> Iterator[None]:
        outer, RECORDER.collector = RECORDER.collector, metafunc.definition  # that function's tests
        try:
            return (yield)
        finally:
            RECORDER.collector = outer

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.items[item.nodeid] = item
        RECORDER.item = item
        try:
            return (yield)
        finally:
            RECORDER.item = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        used = set()
        info = getattr(item, "_fixtureinfo", None)
        for defs in getattr(info, "name2fixturedefs", {}).values():
            used.update(defs)
        request = getattr(item, "_request", None)  # with the fixtures asked for by getfixturevalue
        used.update(getattr(request, "_fixture_defs", {}).values())
        self.used[item.nodeid] = used
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Iterator[None]:
        RECORDER.fixtures.append(fixturedef)
        try:
            return (yield)
        finally:
            RECORDER.fixtures.remove(fixturedef)
            # Finalizers run last-in first-out: this one runs before the fixture's own teardown,
            # and pytest_fixture_post_finalizer (registered first) after it.
            fixturedef.addfinalizer(lambda: RECORDER.fixtures.append(fixturedef))

    def pytest_fixture_post_finalizer(self, fixturedef: Any) -> None:
        if fixturedef in RECORDER.fixtures:
            RECORDER.fixtures.remove(fixturedef)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.outcomes[report.nodeid] = self.outcomes.get(report.nodeid, True) and report.passed

    def readers(self) -> set[str]:
        """The node ids of the tests run that read the profile."""
        files = {item.path for item in self.items.values()}
        conftests = {Path(m) for m in RECORDER.modules if Path(m).name == "conftest.py"}
        for item in self.items.values():
            for parent in item.path.parents:
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                if (parent / "conftest.py").is_file():
                    conftests.add(parent / "conftest.py")
        tainted = _tainted({Path(m) for m in RECORDER.modules}, files | conftests, self.root)
        tainted_dirs = [p.parent for p in tainted if p.name == "conftest.py"]
        found = set()
        for nodeid, item in self.items.items():
            if (
                nodeid in RECORDER.items
                or item.path in tainted
                or _within(item.path, tainted_dirs)
                or self.used.get(nodeid, set()) & RECORDER.fixturedefs
                or nodeid.split("[")[0] in RECORDER.collectors  # read in pytest_generate_tests
                or any(node.nodeid in RECORDER.collectors for node in item.listchain())
            ):
                found.add(nodeid)
        return found

    def complete(self, session: pytest.Session, exitstatus: int) -> str:
        """Why this run cannot check the manifest ("" when it can)."""
        if not self.directories:
            return f"{DIRS} names no directories"
        args = [Path(a.split("::")[0]).resolve() for a in self.config.args]
        if not all(any(d == a or d.is_relative_to(a) for a in args) for d in self.directories):
            return f"the run does not take in all of {DIRS}"
        addopts = list(self.config.getini("addopts"))
        usual = addopts[addopts.index("-m") + 1] if "-m" in addopts[:-1] else ""
        if self.config.option.keyword or self.config.option.markexpr != usual:
            return "tests were deselected (-k, or a -m other than the configured one)"
        if session.shouldstop or session.shouldfail or exitstatus == pytest.ExitCode.INTERRUPTED:
            return "the run stopped early"
        return ""

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.mode != "record":
            return
        RECORDER.active = False
        why = self.complete(session, exitstatus)
        if why:
            self.message = f"profile split: manifest not checked ({why})."
            return
        ran = {n for n in self.items if _within(self.items[n].path, self.directories)}
        known = {n for n in ran if self.outcomes.get(n)}  # passed in every phase: its reads are known
        readers = self.readers() & known
        listed = self.known()
        missing = sorted(readers - listed)
        # Listed but no read seen this time only runs a test twice (safe), and a read by another
        # test's thread can come and go with timing: only a test that is gone is stale.
        stale = sorted(listed - ran)
        spare = len((listed & known) - readers)
        problems = []
        if RECORDER.unattributed:
            problems.append(
                "The sandbox profile was read outside any test, fixture, collector or module import,\n"
                "so no test can be said to depend on it. Read it inside the test or a fixture:\n"
                + "\n".join(RECORDER.unattributed)
            )
        if os.environ.get("PCREF_UPDATE_SNAPSHOTS") == "1":
            self.manifest.write_text(
                HEADER + "".join(f"{n}\n" for n in sorted(readers | (listed & ran) - known)),
                encoding="utf-8",
            )
            self.message = f"profile split: wrote {MANIFEST} ({len(readers)} tests read the profile)."
        elif missing or stale:
            problems.append(
                f"{MANIFEST} is out of date: the strict run runs only the tests of {DIRS} it names.\n"
                + "".join(f"  reads the profile, not listed: {n}\n" for n in missing)
                + "".join(f"  listed, but gone: {n}\n" for n in stale)
                + "Regenerate it with `make profile-readers` (or PCREF_UPDATE_SNAPSHOTS=1 make unit)\n"
                "and commit it with the change."
            )
        if problems:
            self.message = "\n".join(problems)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif not self.message:
            self.message = f"profile split: {MANIFEST} matches ({len(readers)} of {len(ran)} tests read)."
            if spare:
                self.message += f" {spare} listed read nothing this time (make profile-readers drops them)."

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.message:
            terminalreporter.write_line(self.message)


MODE = os.environ.get(SWITCH, "")
# Recording starts on import (tests/conftest.py names this plugin), before the conftests of the
# directories given are imported: a read in their top level is noted too.
_UNINSTALL = _install() if MODE == "record" else None
RECORDER.active = MODE == "record"


def pytest_configure(config: pytest.Config) -> None:
    if MODE not in ("", "record", "readers"):
        raise pytest.UsageError(f"{SWITCH}={MODE!r}: use record or readers")
    if MODE:
        config.pluginmanager.register(ProfileSplit(config, MODE), "profile-split")
