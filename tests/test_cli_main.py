"""The entry point imports only the module of the command being run; the map that says
which module registers which command must hold every command."""

from __future__ import annotations

import argparse

import pytest

from podnet.cli.main import COMMAND_MODULES, build_parser, main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_registered_command_is_mapped_to_its_module() -> None:
    assert _commands(build_parser([])) == set(COMMAND_MODULES)
    for command, module in COMMAND_MODULES.items():
        assert command in _commands(build_parser([command])), module


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
