"""The command line as ``cli.main`` reads it.

With no arguments (what a desktop client spawns: serve over stdio) the CLI does not build its parser:
argparse and the parsers of its twenty commands cost about 10 ms of every cold start (issue 24). The
shortcut must be exactly what the parser would have given.
"""

from __future__ import annotations

from pcref_mcp import cli


def test_no_arguments_are_read_exactly_as_the_parser_reads_them() -> None:
    assert vars(cli._arguments([])) == vars(cli._parser().parse_args([]))


def test_any_argument_goes_through_the_parser() -> None:
    args = cli._arguments(["serve", "--http", "--port", "9000"])
    assert (args.run, args.http, args.port) == (cli.cmd_serve, True, 9000)
    assert cli._arguments(["--read-only"]).read_only is True
    assert cli._arguments(["journal", "--limit", "3"]).run is cli.cmd_journal
