"""`nmr sandbox serve` and `nmr sandbox account create`: a local Numerai API to deploy against."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from builder.cli.app import app, user_errors
from builder.errors import NmrError

sandbox_app = typer.Typer(
    help="A local Numerai API (GraphQL, uploads, validation) for trying deploys offline.",
    no_args_is_help=True,
)
account_app = typer.Typer(help="Sandbox accounts and their API keys.", no_args_is_help=True)
sandbox_app.add_typer(account_app, name="account")
app.add_typer(sandbox_app, name="sandbox")


def default_dir() -> Path:
    """``$NMR_SANDBOX_DIR``, else ``~/.cache/nmr/sandbox``."""
    configured = os.environ.get("NMR_SANDBOX_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "nmr" / "sandbox"


_DIR = typer.Option(None, "--dir", help="State directory (default: ~/.cache/nmr/sandbox).")


@sandbox_app.command("serve")
@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="Port (0: any free port)."),
    directory: Path = _DIR,
    live: Path = typer.Option(None, "--live", help="Live features parquet used to validate."),
    benchmarks: Path = typer.Option(
        None, "--benchmarks", help="Live benchmark models parquet used to validate."
    ),
    datasets: Path = typer.Option(
        None,
        "--datasets",
        help="Serve this directory as Numerai's datasets (DIR/v5.2/train.parquet ...).",
    ),
) -> None:
    """Serve the sandbox API until interrupted; point clients at it with NUMERAI_API_URL."""
    from builder.sandbox.server import SandboxServer

    if datasets is not None and not datasets.is_dir():
        raise NmrError(f"--datasets {datasets}: not a directory")
    server = SandboxServer(
        directory or default_dir(),
        host,
        port,
        live_path=live,
        benchmarks_path=benchmarks,
        datasets_dir=datasets,
    )
    typer.echo(f"nmr sandbox listening on {server.url} (state in {server.store.directory})")
    if datasets is not None:
        typer.echo(f"serving {len(server.datasets.names())} dataset files from {datasets}")
    typer.echo(f"export NUMERAI_API_URL={server.url}")
    if live is None:
        typer.echo("note: no --live file given; uploaded pickles will fail validation")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@account_app.command("create")
@user_errors
def account_create(
    directory: Path = _DIR,
    username: str = typer.Option(None, "--username", help="Account name (default: random)."),
) -> None:
    """Create a sandbox account; prints its API keys as shell exports."""
    from builder.sandbox.store import Store

    store = Store(directory or default_dir())
    try:
        name, public_id, secret_key = store.create_account(username)
    finally:
        store.close()
    # These are the sandbox's own keys (valid only against this sandbox directory); printing
    # them is the point of the command, e.g. `eval "$(nmr sandbox account create)"`.
    typer.echo(f"# sandbox account {name}")
    typer.echo(f"export NUMERAI_PUBLIC_ID={public_id}")
    typer.echo(f"export NUMERAI_SECRET_KEY={secret_key}")
