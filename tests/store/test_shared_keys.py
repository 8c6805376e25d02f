"""Replicas configured with one PCREF_STORE_KEY seal and open each other's state; without it each
server keeps its own key (a single process), as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcref_mcp.config import load_settings
from pcref_mcp.server.app import _request_state_security
from pcref_mcp.server.runtime import Runtime


def _settings(tmp_path: Path, key: str | None) -> object:
    env = {"HOME": str(tmp_path)}
    if key:
        env["PCREF_STORE_KEY"] = key
    return load_settings(env)


def test_replicas_with_one_store_key_share_request_state_and_cursor_keys(tmp_path: Path) -> None:
    one, two = (_settings(tmp_path, "k" * 40) for _ in range(2))
    sealed = _request_state_security(one).codec.seal(b"an input-required round")  # type: ignore[arg-type]
    assert _request_state_security(two).codec.unseal(sealed) == b"an input-required round"  # type: ignore[arg-type]
    other = _request_state_security(_settings(tmp_path, "z" * 40))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error type for a foreign seal
        other.codec.unseal(sealed)
    assert Runtime(one).cursor_key == Runtime(two).cursor_key  # type: ignore[arg-type]
    assert Runtime(one).cursor_key != Runtime(_settings(tmp_path, "z" * 40)).cursor_key  # type: ignore[arg-type]


def test_without_a_store_key_each_process_has_its_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    assert _request_state_security(settings) is None  # type: ignore[arg-type]  # the SDK's ephemeral key
    assert Runtime(settings).cursor_key != Runtime(settings).cursor_key  # type: ignore[arg-type]
