"""The `livecam` command line: one module per command, each registering its own arguments.
Domain errors become one-line CLI errors here, and only here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..config import ConfigError, load_config, override, resolved
from ..door import EnrollError
from ..engine import EncoderError, ImageError, ModelError
from ..live import SourceError
from ..storage import OutputError
from . import calibrate, check, encode, enroll, gallery, identify, run, unknown, verify, web
from .common import EXIT_FAILED, EXIT_USAGE, UsageError, _Parser

COMMANDS = (run, enroll, gallery, unknown, calibrate, check, encode, verify, identify, web)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livecam", description="Real-time face recognition on a small CPU.")
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    # --config, -v and -q before or after the command: the same flags on every subcommand, which
    # set a value only when given there (SUPPRESS), so one given before is not reset after
    for target, default in ((parser, None), (common := _Parser(add_help=False), argparse.SUPPRESS)):
        target.add_argument("--config", default=default, help="config file (default: ./config.yaml when present)")
        target.add_argument("-v", "--verbose", action="store_true", default=default or False, help="more logging")
        target.add_argument(
            "-q", "--quiet", action="store_true", default=default or False, help="warnings and errors only"
        )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    class _Sub:
        @staticmethod
        def add_parser(name: str, **kwargs):
            return commands.add_parser(name, parents=[common], **kwargs)

    sub = _Sub()

    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_livecam", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("livecam: %(message)s"))
    handler._livecam = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except UsageError as exc:
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    if args.command is None:  # plain `livecam`: what it can do, not only "a command is required"
        print(parser.format_help(), end="")
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    try:
        cfg = load_config(Path(args.config) if args.config else None)
        # the model first, then every distance left null filled in from the model's own
        cfg = resolved(override(cfg, "encoding", model=getattr(args, "model", None)))
        return args.func(args, cfg)
    except (UsageError, ConfigError, SourceError, EnrollError, OutputError, ModelError) as exc:
        # a model that cannot be loaded is the install's or the config's fault, as a bad key is
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ImageError, EncoderError) as exc:
        print(f"livecam: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def main_entry() -> None:
    sys.exit(main())
