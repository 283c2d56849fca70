"""``monitor web`` (serve, passwd) and ``monitor tokens``: the web front door and its API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from monitor.cli.common import fail, row, schema_engine, settings, setup_logs, show, table, tokens_app, utcnow, web_app


@web_app.callback(invoke_without_command=True)
def web(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default: put a TLS proxy in front).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the web front door (operator pages, /api/v1, unsubscribe links, Atom, /healthz, /metrics)."""
    if context.invoked_subcommand is not None:
        return
    import os

    import uvicorn

    from monitor.db import redact_url
    from monitor.web.app import serve_app

    setup_logs("INFO")
    engine = schema_engine()
    typer.echo(f"monitor web on http://{host}:{port}/ ({redact_url(engine.url)})", err=True)
    app = serve_app(settings(), engine, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, server_header=False,
                proxy_headers=False)  # serve_app reads the forwarded headers itself, after the SSO gate


@web_app.command("passwd")
def web_passwd(
    name: Annotated[str, typer.Argument(help="The operator's login name.")] = "admin",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard "
                                                                         "input instead of prompting.")] = False,
) -> None:
    """Create an operator or change an operator's password (stored as an argon2 hash)."""
    from monitor import operations
    from monitor.db import session_scope

    password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    engine = schema_engine()
    try:
        with session_scope(engine) as session:
            operations.set_operator_password(session, name, password, now=utcnow())
    except operations.OperationError as exc:
        fail(str(exc), 2)
    typer.echo(f"operator {name} can log in")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. grafana.")],
    read_only: Annotated[bool, typer.Option("--read-only", help="May read, never change anything.")] = False,
) -> None:
    """Create an API token and print it once; only its hash is stored."""
    from monitor import operations
    from monitor.db import session_scope

    engine = schema_engine()
    try:
        with session_scope(engine) as session:
            token = operations.create_api_token(session, name, read_only=read_only, now=utcnow())
    except operations.OperationError as exc:
        fail(str(exc), 2)
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """API tokens by name (the tokens themselves are not stored)."""
    from monitor import operations
    from monitor.db import session_scope

    engine = schema_engine()
    with session_scope(engine) as session:
        rows = operations.list_api_tokens(session)
    if not rows:
        return
    grid = table("name", "access", "created")
    for token in rows:
        created = token.created_at.strftime("%Y-%m-%d") if token.created_at else "-"
        row(grid, token.name, "read-only" if token.read_only else "read-write", created)
    show(grid)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke an API token: calls with it are refused from now on."""
    from monitor import operations
    from monitor.db import session_scope

    engine = schema_engine()
    try:
        with session_scope(engine) as session:
            operations.revoke_api_token(session, name)
    except operations.OperationError as exc:
        fail(str(exc), 1)
    typer.echo(f"revoked {name}")
