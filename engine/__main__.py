"""Command line: ``python -m engine <command> ...``.

Each command lives in ``engine/cli/<command>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``.  Bad input exits with code 2 and a
one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import engine.cli as cli_pkg


def _commands() -> dict[str, object]:
    mods = {}
    for info in pkgutil.iter_modules(cli_pkg.__path__):
        if info.name.startswith("_"):
            continue
        mods[info.name] = importlib.import_module(f"engine.cli.{info.name}")
    return mods


class _UsageError(Exception):
    pass


class _Formatter(argparse.HelpFormatter):
    """Option help ends with its default when the text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower() or action.default in (None, False, [])
                or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors (a missing option, a value of the wrong kind) follow the rule of the other
    input errors: exit code 2 and one line on stderr, naming the command and the option."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def main(argv: list[str] | None = None) -> int:
    commands = _commands()
    parser = _Parser(prog="python -m engine", description="GENNAPE Studio engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, mod in sorted(commands.items()):
        aliases = [name.replace("_", "-")] if "_" in name else []  # `studio-assets` == `studio_assets`
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), aliases=aliases, formatter_class=_Formatter)
        mod.add_arguments(p)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(commands[args.command.replace("-", "_")].run(args) or 0)
    except (ValueError, OSError, KeyError) as exc:  # user-facing input errors (bad values, paths, names)
        from engine.graphs.cg import first_line

        if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
            exc = ValueError(exc.args[0])  # str(KeyError) would wrap the message in quotes
        print(f"error: {first_line(exc, type(exc).__name__)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback
        print(f"\ninterrupted: {args.command} stopped before it finished", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
