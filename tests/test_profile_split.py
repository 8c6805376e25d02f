"""`make unit` runs the tests the sandbox profile can change under both profiles and the rest once. What
runs once must be unable to see the profile: tests/referrals tests the domain alone, which never imports
the sandbox (tests/test_layers.py), so its tests import only the domain and read no profile. A domain
test that starts reaching the sandbox, a server or the profile fails here: then it belongs in one of
the Makefile's SANDBOX_TESTS directories (or tests/referrals goes back into that list).

Of SANDBOX_TESTS, the strict run runs only the tests that read the profile, as recorded by
tests/profile_reads.py in the lenient run (which fails when tests/profile_readers.txt is out of date).
The tests below check the Makefile wires both runs so, and that the recording notes each way a test
can read the profile, so it cannot rot into letting a reader run under one profile only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_layers import imported_parts

ROOT = Path(__file__).resolve().parents[1]
ONCE = ROOT / "tests" / "referrals"
DOMAIN = {"referrals", "errors"}


def sandbox_tests() -> list[str]:
    """The Makefile's list of directories run under both profiles."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^SANDBOX_TESTS := (.*)$", makefile, re.M)
    assert match, "the Makefile names the tests run under both profiles in SANDBOX_TESTS"
    return match.group(1).split()


def test_the_domain_tests_run_once_and_reach_only_the_domain() -> None:
    assert "tests/referrals" not in sandbox_tests()
    for path in ONCE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert imported_parts(path) <= DOMAIN, (path.name, imported_parts(path) - DOMAIN)
        assert not re.search(
            r"\btests\.(profiles|sandbox|server|client|e2e)\b|PCREF_SANDBOX_PROFILE", text
        ), path


def test_every_directory_run_twice_exists() -> None:
    for directory in sandbox_tests():
        assert (ROOT / directory).is_dir(), directory


def unit_recipe() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^unit:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has a unit target"
    split = re.search(r"^SPLIT = (.*)$", makefile, re.M)
    assert split and 'PCREF_SANDBOX_TESTS="$(SANDBOX_TESTS)"' in split.group(1)
    return [line for line in recipe.group(1).splitlines() if "pytest" in line]


def test_the_lenient_run_records_all_of_sandbox_tests_and_the_strict_run_follows_it() -> None:
    strict, lenient = unit_recipe()
    assert "PCREF_PROFILE_SPLIT=readers" in strict and "PCREF_SANDBOX_PROFILE=strict" in strict
    assert "PCREF_PROFILE_SPLIT=record" in lenient and "PCREF_SANDBOX_PROFILE=lenient" in lenient
    assert "pytest $(SANDBOX_TESTS) " in lenient and "$(SPLIT)" in lenient  # all of them: a check
    # What the strict run leaves out, the lenient run runs (once), and that is all it runs.
    ignored = re.findall(r"--ignore=(\S+)", strict)
    taken = re.search(r"pytest \$\(SANDBOX_TESTS\) ([^;]*);", lenient)
    assert ignored and taken and sorted(ignored) == sorted(taken.group(1).split()), (ignored, taken)
    assert "$(SPLIT)" in strict and not set(ignored) & set(sandbox_tests())


def test_the_manifest_names_sorted_tests_of_sandbox_tests() -> None:
    lines = (ROOT / "tests" / "profile_readers.txt").read_text(encoding="utf-8").splitlines()
    names = [line for line in lines if not line.startswith("#")]
    assert names == sorted(set(names)) and names
    for name in names:
        path = name.split("::")[0]
        assert any(path.startswith(d + "/") for d in sandbox_tests()), name
        assert (ROOT / path).is_file(), name


# --- the recording behind the split (tests/profile_reads.py) --------------------------------------

SUITE = {
    "pytest.ini": "[pytest]\naddopts = -q -p no:cacheprovider\n",
    "conftest.py": 'pytest_plugins = ["tests.profile_reads"]\n',
    "suite/__init__.py": "",
    "suite/levels.py": "import os\n\nLEVEL = os.environ.get('PCREF_SANDBOX_PROFILE')  # read on import\n",
    "suite/conftest.py": """
import os

import pytest

CONFIGS = []  # process-wide state: a config made in one test, looked up by its profile in another


@pytest.fixture(scope="session")
def seeded():  # reads in its own set-up, once
    return os.environ.get("PCREF_SANDBOX_PROFILE")


@pytest.fixture(scope="module")
def closing():  # reads only in its teardown
    yield
    assert "PCREF_SANDBOX_PROFILE" in os.environ or True


def pytest_generate_tests(metafunc):
    if "generated" in metafunc.fixturenames:
        metafunc.parametrize("generated", [os.environ.get("PCREF_SANDBOX_PROFILE")])
""",
    "suite/test_a.py": """
import os
import subprocess
import sys

from pcref_mcp.sandbox.config import SandboxConfig
from suite.conftest import CONFIGS


def test_env(): os.environ["PCREF_SANDBOX_PROFILE"]
def test_nothing(): assert os.environ.get("HOME") is not None
def test_fixture_first(seeded): pass
def test_child_inherits(): subprocess.run([sys.executable, "-c", ""], check=True)
def test_child_given(): subprocess.run([sys.executable, "-c", ""], env={"PCREF_SANDBOX_PROFILE": "x"})
def test_child_without(): subprocess.run([sys.executable, "-c", ""], env={}, check=True)
def test_generated(generated): pass
def test_config_made(): CONFIGS.append(SandboxConfig())
def test_config_pinned(): assert SandboxConfig(profile="strict").profile == "strict"
def test_config_looked_up(): {}.get((CONFIGS[0].profile, 1))
""",
    "suite/test_b.py": "from suite.levels import LEVEL\n\ndef test_imports_a_reading_module(): pass\n",
    "suite/test_e.py": "from suite.levels import LEVEL  # imported already: runs no code\n\ndef test_too(): pass\n",
    "suite/test_c.py": """
def test_fixture_cached(seeded): pass
def test_closing_first(closing): pass
def test_closing_last(closing): pass
""",
    "suite/test_d.py": "def test_plain(): pass\n",
    "suite/lazy.py": "import os\n\nLEVEL = os.environ.get('PCREF_SANDBOX_PROFILE')  # read on import\n",
    "suite/test_f.py": "def test_imports_in_the_test():\n    import suite.lazy\n",
    "suite/test_g.py": "def test_imports_it_again():  # imported already: runs no code\n    import suite.lazy\n",
    "suite/test_h.py": """
import os
import threading

GO = threading.Event()
THREADS = []


def test_starts_a_late_reader():  # its thread reads after it ended, while another module's test runs
    def read_later():
        GO.wait(30)
        os.environ.get("PCREF_SANDBOX_PROFILE")

    THREADS.append(threading.Thread(target=read_later, daemon=True))
    THREADS[0].start()
""",
    "suite/test_i.py": """
from suite.test_h import GO, THREADS


def test_runs_while_it_reads():  # the read is charged to the test that started the thread
    GO.set()
    THREADS[0].join(30)
""",
    "other/test_once.py": "def test_elsewhere(): pass\n",
}
READERS = [
    "suite/test_a.py::test_child_given",
    "suite/test_a.py::test_child_inherits",
    "suite/test_a.py::test_config_looked_up",
    "suite/test_a.py::test_config_made",
    "suite/test_a.py::test_env",
    "suite/test_a.py::test_fixture_first",
    "suite/test_b.py::test_imports_a_reading_module",
    "suite/test_c.py::test_closing_first",
    "suite/test_c.py::test_closing_last",
    "suite/test_c.py::test_fixture_cached",
    "suite/test_e.py::test_too",
    "suite/test_f.py::test_imports_in_the_test",
    "suite/test_g.py::test_imports_it_again",
    "suite/test_h.py::test_starts_a_late_reader",
]


def run_suite(tmp_path: Path, mode: str, *args: str, update: bool = False) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PCREF_")}
    env |= {"PYTHONPATH": str(ROOT), "PCREF_SANDBOX_PROFILE": "lenient", "PCREF_PROFILE_SPLIT": mode}
    env |= {"PCREF_SANDBOX_TESTS": "suite"} | ({"PCREF_UPDATE_SNAPSHOTS": "1"} if update else {})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suite", "other", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_every_source_of_a_read_is_recorded_and_the_manifest_is_kept(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    manifest = tmp_path / "tests" / "profile_readers.txt"
    manifest.parent.mkdir()
    status, out = run_suite(tmp_path, "record", update=True)
    assert status == 0, out
    listed = [line for line in manifest.read_text().splitlines() if not line.startswith("#")]
    generated = "suite/test_a.py::test_generated[lenient]"
    assert listed == sorted([*READERS, generated]), out

    status, out = run_suite(tmp_path, "record")
    assert status == 0 and "matches (15 of 20 tests read)" in out, out

    # Listed but not read runs a test twice (safe: a note); not listed but read, or gone, fails.
    manifest.write_text("\n".join([*listed, "suite/test_d.py::test_plain"]))
    status, out = run_suite(tmp_path, "record")
    assert status == 0 and "1 listed read nothing this time" in out, out
    manifest.write_text("\n".join([*listed[1:], "suite/test_d.py::test_plain", "suite/gone.py::t"]))
    status, out = run_suite(tmp_path, "record")
    assert status == 1, out
    assert f"reads the profile, not listed: {listed[0]}" in out, out
    assert "suite/test_d.py::test_plain" not in out, out
    assert "listed, but gone: suite/gone.py::t" in out, out

    status, out = run_suite(tmp_path, "record", "-k", "env")  # a partial run checks nothing
    assert status == 0 and "manifest not checked" in out, out

    manifest.write_text("suite/test_a.py::test_env\n")  # the other run: only what the manifest names
    status, out = run_suite(tmp_path, "readers", "-rA")
    assert status == 0 and re.findall(r"^PASSED (\S+)", out, re.M) == [
        "suite/test_a.py::test_env",
        "other/test_once.py::test_elsewhere",
    ], out


def test_a_default_profile_notes_every_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile a SandboxConfig takes from the environment notes each use; one given does not."""
    from pcref_mcp.sandbox.config import SandboxConfig
    from tests import profile_reads

    uses: list[int] = []

    class Counting(profile_reads.Recorder):
        def read(self) -> None:
            uses.append(1)

    monkeypatch.setattr(profile_reads, "RECORDER", Counting())
    uninstall = profile_reads._install()
    try:
        config, pinned = SandboxConfig(), SandboxConfig(profile="lenient")
    finally:
        uninstall()
    assert isinstance(config.profile, profile_reads.RecordingProfile)
    assert type(pinned.profile) is str
    profile = config.profile
    for use in (
        lambda: profile == "strict", lambda: profile != "x", lambda: hash(profile),
        lambda: {profile: 1}, lambda: f"{profile}", lambda: str(profile), lambda: profile.upper(),
        lambda: profile in ("lenient", "strict"), lambda: "x" + profile, lambda: profile + "x",
        lambda: profile[0], lambda: bool(profile), lambda: len(profile), lambda: list(profile),
        lambda: "%s" % profile,  # noqa: UP031 lambda: profile < "z", lambda: "en" in profile,
    ):  # fmt: skip
        uses.clear()
        use()
        assert uses, use
