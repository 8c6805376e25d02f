import pytest

from pcref_mcp import identity


def test_local_by_default() -> None:
    assert identity.current() == identity.LOCAL
    assert identity.current().is_local


def test_acting_as_restores_on_error() -> None:
    alice = identity.Principal(id="oid-a", name="alice@contoso.example", tenant="t1")
    with pytest.raises(RuntimeError), identity.acting_as(alice):
        assert identity.current() is alice
        assert not identity.current().is_local
        raise RuntimeError("boom")
    assert identity.current() == identity.LOCAL
