"""The entry point imports only the module of the command being run: each command lives in
the module of its name."""

from __future__ import annotations

import argparse

import pytest

from podnet.cli.main import COMMANDS, build_parser, main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_is_registered_by_the_module_of_its_name() -> None:
    assert _commands(build_parser([])) == set(COMMANDS)
    for command in COMMANDS:
        assert _commands(build_parser([command])) == {command}


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
