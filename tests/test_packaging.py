"""Packaging: the wheel carries the typed package and the prompts, the console script and version come
from one place, `pcref-mcp --version` prints it, and server.json (MCP registry) agrees."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from pcref_mcp import __version__
from pcref_mcp.config import load_settings
from tests.e2e.servers import PCREF, process_env

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SERVER_JSON = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
PROMPTS = sorted(p.name for p in (ROOT / "prompts").glob("*.md"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build from a copy of exactly what the sdist needs, so nothing is written into the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pcref_mcp", "prompts"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(tmp / "dist"),
            f"{src}/",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (tmp / "dist").glob("pcref_mcp-*.whl")
    return built


def test_version_comes_from_the_package_only() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pcref_mcp.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?", __version__)


def test_console_script_and_version_flag() -> None:
    assert PYPROJECT["project"]["scripts"] == {"pcref-mcp": "pcref_mcp.cli:main"}
    out = subprocess.run([str(PCREF), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"pcref-mcp {__version__}"


def test_wheel_has_the_typed_package_the_prompts_and_the_entry_point(wheel: Path) -> None:
    assert wheel.name == f"pcref_mcp-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = f"pcref_mcp-{__version__}.dist-info"
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert "pcref_mcp/py.typed" in names
    assert (
        "pcref_mcp/partner_center/request_schemas.json" in names
    )  # the published contract bodies are checked against
    assert PROMPTS and {f"pcref_mcp/prompts/{p}" for p in PROMPTS} <= names
    source = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "pcref_mcp").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert source - names == set(), "modules missing from the wheel: add their package to pyproject.toml"
    assert re.search(r"^pcref-mcp = pcref_mcp\.cli:main$", entry_points, re.M)
    assert f"\nVersion: {__version__}\n" in metadata
    assert "Requires-Dist: mcp" in metadata
    assert f"mcp-name: {SERVER_JSON['name']}" in metadata  # the registry's PyPI ownership check


def test_installed_wheel_finds_its_prompts(wheel: Path, tmp_path: Path) -> None:
    """Unpacked on its own (no checkout beside it), the package still reads prompts/*.md."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        "import json, pcref_mcp, pcref_mcp.server.prompts as p;"
        "print(json.dumps([pcref_mcp.__file__, [n for n, _ in p.prompt_files()]]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    module_file, found = json.loads(out.stdout)
    assert Path(module_file).is_relative_to(site), module_file
    assert found == [p.removesuffix(".md") for p in PROMPTS]
    contract = (
        "from pcref_mcp.partner_center.wire_contract import check_request;"
        "check_request('PATCH', '/x', [{'op': 'replace', 'path': '/status', 'value': 'Active'}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", contract], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr  # the bundled schemas are found outside a checkout


def test_server_json_describes_the_pypi_package() -> None:
    s = SERVER_JSON
    assert s["$schema"] == "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json"
    assert s["name"] == "io.github.pcref/pcref-mcp"
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", s["name"])
    assert 1 <= len(s["description"]) <= 100  # the schema's limit
    assert s["version"] == __version__
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"mcp-name: {s['name']}" in readme, "the MCP registry verifies PyPI ownership by this line"
    (package,) = s["packages"]
    allowed = {
        "registryType",
        "registryBaseUrl",
        "identifier",
        "version",
        "fileSha256",
        "runtimeHint",
        "transport",
        "runtimeArguments",
        "packageArguments",
        "environmentVariables",
    }
    assert set(package) <= allowed
    assert package["registryType"] == "pypi"
    assert package["identifier"] == PYPROJECT["project"]["name"] == "pcref-mcp"
    assert package["version"] == __version__
    assert package["transport"] == {"type": "stdio"}


def test_server_json_environment_variables_are_real_settings(tmp_path: Path) -> None:
    variables = {v["name"]: v for v in SERVER_JSON["packages"][0]["environmentVariables"]}
    assert set(variables) == {"PCREF_BACKEND", "PCREF_TENANT_ID", "PCREF_CLIENT_ID", "PCREF_READ_ONLY"}
    for name, var in variables.items():
        assert var["description"] and var["isSecret"] is False and var["isRequired"] is False, name
        assert var.get("format", "string") in {"string", "number", "boolean", "filepath"}, name
        for value in var.get("choices", []) + ([var["default"]] if "default" in var else []):
            settings = load_settings(env={name: value, "XDG_CONFIG_HOME": str(tmp_path)})
            assert str(getattr(settings, name.removeprefix("PCREF_").lower())).lower() == value, (name, value)
    env = process_env(tmp_path, PCREF_READ_ONLY="true")
    out = subprocess.run([str(PCREF), "tools", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert {t["name"] for t in json.loads(out.stdout)} == {
        "search_referrals",
        "get_referral",
        "recent_changes",
        "search",
        "fetch",
    }
