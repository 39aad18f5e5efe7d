"""`podnet dashboard`'s arguments: a cluster that does not exist and a port that is not one
are refused with one line and exit 2, before anything listens."""

from __future__ import annotations

import pytest

from podnet.cli.main import main


def test_no_such_cluster(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PODNET_STATE_DIR", str(tmp_path))
    assert main(["dashboard", "--cluster", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no cluster nope" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_not_a_port(port: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["dashboard", "--port", port])
    assert e.value.code == 2
    assert "is not a TCP port" in capsys.readouterr().err
