"""The entry point imports only the module of the command being run: each command lives in
the module of its name, and the listing of every command (`podnet --help`) imports none."""

from __future__ import annotations

import argparse

import pytest

from podnet.cli.main import COMMANDS, build_parser, full_parser, main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_is_registered_by_the_module_of_its_name() -> None:
    assert _commands(full_parser()) == set(COMMANDS)
    for command in COMMANDS:
        assert _commands(build_parser([command])) == {command}


def test_the_listing_is_what_the_modules_register() -> None:
    """`podnet --help` and a usage error print the listing, which no command module built:
    it must read exactly as the one the modules' own parsers give."""
    listing, full = build_parser([]), full_parser()
    assert _commands(listing) == set(COMMANDS)
    assert listing.format_help() == full.format_help()
    assert listing.format_usage() == full.format_usage()


@pytest.mark.parametrize("argv", [["--help"], [], ["frobnicate"], ["--version"]], ids=str)
def test_top_level_output_unchanged(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    listed = (e.value.code, capsys.readouterr())
    with pytest.raises(SystemExit) as e:
        full_parser().parse_args(argv)
    assert listed == (e.value.code, capsys.readouterr())


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
