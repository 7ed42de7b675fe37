"""The Typer application and the rules every command shares.

A command parses flags, calls one function of one stage and renders the result. User errors
(``NmrError``) become one line on stderr and exit code 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback

import typer

from builder.errors import NmrError

app = typer.Typer(
    name="nmr",
    help="Build, lock, test and deploy Numerai model-upload pickles from numerai.yaml.",
    no_args_is_help=True,
    # Typer's own shell completion: --install-completion / --show-completion for bash, zsh,
    # fish and PowerShell; slot names and runtime tags come from complete_slot/complete_runtime.
    add_completion=True,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def debug_enabled() -> bool:
    return _state["debug"]


def fail(message: str, code: int = 1) -> None:
    """Print the message to stderr and exit with ``code``.

    A one-line message gets an ``error:`` prefix. A multi-line message is a list of located
    problems (``numerai.yaml:12:7: models.x.features: ...``) that already names its place on
    every line, so it is printed as it is.
    """
    if "\n" in message:
        typer.echo(message, err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(func):
    """Turn NmrError (and unexpected exceptions) into one line + exit 1, unless --debug."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except NmrError as error:
            if debug_enabled():
                traceback.print_exc()
            fail(str(error), getattr(error, "exit_code", 1))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (`nmr status | head -1`): stop quietly, as cat does. Python's
            # docs (signal, "Note on SIGPIPE") point stdout at devnull so the interpreter's
            # final flush does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as error:  # a bug in nmr: say so in one line, details under --debug
            if debug_enabled():
                traceback.print_exc()
            fail(
                f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)"
            )

    return wrapper


def _print_version(value: bool) -> None:
    if value:
        from builder import __version__

        typer.echo(f"nmr {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    # Eager, with its own callback: a group callback only runs when a command follows, so a
    # plain flag made `nmr --version` stop at click's "Missing command." instead.
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the nmr version and exit.",
        is_eager=True,
        expose_value=False,
        callback=_print_version,
    ),
) -> None:
    """Build, lock, test and deploy Numerai model-upload pickles from numerai.yaml."""
    _state["debug"] = debug


def echo_err(message: str) -> None:
    print(message, file=sys.stderr)


def complete_slot(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the model slots of numerai.yaml (the command's -f FILE when given,
    else NMR_CONFIG or the file found walking up) that start with what was typed.

    Reads only the keys under ``models:`` (no validation), so an unfinished config still
    completes; a missing or unreadable file completes nothing rather than printing an error
    into the user's shell.
    """
    try:
        import yaml

        from builder.config.loader import find_config

        given = ctx.params.get("config") or ctx.params.get("file")
        path = find_config(given) if given else find_config()
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        models = doc.get("models") if isinstance(doc, dict) else None
        names = [str(name) for name in models] if isinstance(models, dict) else []
    except Exception:  # completion must never fail loudly
        return []
    typed = ctx.params.get("slots") or ctx.params.get("target") or []
    return [n for n in names if n.startswith(incomplete) and n not in typed]


def complete_runtime(incomplete: str) -> list[str]:
    """Shell completion: runtime tags (and their aliases) of nmr's catalog."""
    from builder import runtimes

    names = [*runtimes.known_tags(), *(a for r in runtimes.runtimes() for a in r.aliases)]
    return [n for n in dict.fromkeys(names) if n.startswith(incomplete)]
