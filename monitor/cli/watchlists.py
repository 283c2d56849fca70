"""``monitor watchlists``: validate, test, draft and backtest watchlists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import fail, load_matcher, parse_day, require_schema, settings, watchlists_app, watchlists_dir


@watchlists_app.command("validate")
def watchlists_validate(
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
) -> None:
    """Check every watchlist file; print each problem with file and line."""
    from monitor.match import load_watchlists

    folder = watchlists_dir(watchlists)
    result = load_watchlists(folder)
    for error in result.errors:
        typer.echo(str(error), err=True)
    typer.echo(f"{len(result.watchlists)} valid watchlists, {len(result.errors)} problems in {folder}")
    if result.errors:
        raise typer.Exit(2)


@watchlists_app.command("test")
def watchlists_test(
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
) -> None:
    """Run the positive and negative examples written in each watchlist."""
    from monitor.match import run_examples

    result, matcher = load_matcher(watchlists_dir(watchlists))
    failures = run_examples(result, matcher)
    for failure in failures:
        typer.echo(f"FAIL {failure}", err=True)
    typer.echo(f"{len(result.watchlists)} watchlists, {len(failures)} failing examples")
    if failures or result.errors:
        raise typer.Exit(1)


@watchlists_app.command("draft")
def watchlists_draft(
    folder: Annotated[Path, typer.Argument(help="Folder of documents (.txt, .md, .html, .pdf) to draft from.")],
    name: Annotated[str, typer.Option("--name", help="Name of the draft watchlist (lower_snake_case).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the draft (a NAME folder inside it).")] = Path(
        "drafts"),
    sides: Annotated[str | None, typer.Option(help="The parties as sides, comma-separated, the first required "
                                                   "by every rule (default: the sides the documents name most).")
                     ] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w",
                                                    help="Watchlist folder whose actors and calendar to reuse.")]
    = None,
) -> None:
    """Draft a watchlist from documents: YAML, actors, calendar entries and a report. Never activates it."""
    from monitor.draft import DraftError, make_draft, read_folder, write_draft

    if not folder.is_dir():
        fail(f"{folder} is not a folder of documents", 2)
    read = read_folder(folder)
    for problem in read.problems:
        typer.echo(f"monitor: {problem}", err=True)
    try:
        draft = make_draft(read.sources, watchlists_dir(watchlists), name,
                           sides=[s.strip() for s in sides.split(",") if s.strip()] if sides else None)
    except DraftError as exc:
        fail(str(exc), 2)
    files = write_draft(draft, out, read.problems, read.sources)
    caught = len(draft.caught) - len(draft.missed)
    typer.echo(f"draft {name}: parties {', '.join(draft.parties)}; {len(draft.families)} event cues, "
               f"{len(draft.new_actors)} new actors, {sum(e.new for e in draft.events)} new calendar entries; "
               f"catches {caught} of {len(draft.caught)} documents")
    for path in files:
        typer.echo(f"  wrote {path}")
    if draft.errors or draft.example_failures:
        for problem in [*draft.errors, *draft.example_failures]:
            typer.echo(f"monitor: draft problem: {problem}", err=True)
        raise typer.Exit(1)


@watchlists_app.command("backtest")
def watchlists_backtest(
    name: Annotated[str, typer.Argument(help="The watchlist to try (as it is now in the folder).")],
    since: Annotated[str | None, typer.Option(help="Only items fetched since YYYY-MM-DD.")] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
    samples: Annotated[int, typer.Option(help="Sample hits to show with their evidence.")] = 5,
) -> None:
    """Run a new or edited watchlist over stored items: hits per feed and day, samples, changes. Sends nothing."""
    from monitor.db import make_engine, read_scope
    from monitor.operations.backtest import backtest

    current = settings()
    result, matcher = load_matcher(watchlists_dir(watchlists))
    if name not in matcher.watchlist_names:
        fail(f"no valid watchlist named {name!r} in {watchlists_dir(watchlists)}", 2)
    version = next(w.version for w in result.watchlists if w.name == name)
    start = parse_day("--since", since)
    engine = make_engine(current.database_url)
    require_schema(engine)
    with read_scope(engine) as session:
        report = backtest(session, matcher, name, version, since=start, samples=samples)
    typer.echo(f"backtest of {name} version {version} over {report.scanned} stored items"
               + (f" since {since}" if since else "") + f": {len(report.would)} hits")
    typer.echo("hits per feed:")
    for feed, count in report.per_feed.most_common(20):
        typer.echo(f"  {count:>6}  {feed}")
    typer.echo("hits per day:")
    for day, count in sorted(report.per_day.items())[-31:]:
        typer.echo(f"  {day}  {count}")
    previous = report.previous
    typer.echo(f"against the stored hits ({len(report.stored)}, versions {', '.join(report.versions) or '-'}"
               f"{'; previous: ' + ', '.join(previous) if previous else ''}): {len(report.new)} new, "
               f"{len(report.gone)} no longer")
    for item_id in report.new[:samples]:
        typer.echo(f"  + {report.titles.get(item_id, item_id)}")
    for item_id in report.gone[:samples]:
        typer.echo(f"  - {report.titles.get(item_id, item_id)}")
    if report.samples:
        typer.echo("sample hits:")
        for sample in report.samples:
            typer.echo(f"  {sample.title[:100]}\n    {sample.link or ''}\n    "
                       + sample.explanation.replace("\n", "\n    "))
