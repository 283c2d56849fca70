"""Engine, sessions and migrations.

SQLite runs in WAL mode and opens every write transaction with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing halfway
through with "database is locked". Read-only work (``status``, ``hits``,
``deliveries list``) goes through :func:`read_scope`, whose transactions are
deferred: in WAL mode they read a snapshot and never wait for a writer, however
long its transaction. The schema is created and upgraded by Alembic
(``monitor/migrations``) on SQLite as on PostgreSQL; an empty SQLite database is
given the head schema in one go from ``migrations/sqlite_schema.sql``, the DDL the
migrations leave, written out by :func:`write_sqlite_schema` and checked against
them by the tests.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_SCHEMA = MIGRATIONS / "sqlite_schema.sql"
_SCHEMA_HEADER = "-- monitor's SQLite schema at revision "
READ_ONLY = "monitor_read_only"  # execution option: this connection only reads


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (what hosting services hand out) use the psycopg 3 driver."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Build the engine for ``url``; creates the folder of a SQLite file."""
    url = normalise_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        shown = f"{url.split('://', 1)[0]}://…" if "://" in url else "(no scheme://)"  # never echo a password
        raise DatabaseError(f"database_url {shown}: not a database URL; write e.g. "
                            "sqlite:///var/monitor.db or postgresql://user@host/dbname") from None
    if url.startswith("sqlite"):
        path = parsed.database
        if path and path != ":memory:":
            folder = Path(path).parent
            if folder.exists() and not folder.is_dir():
                raise DatabaseError(f"cannot use {folder} as the database folder: it is a file")
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot use {folder} as the database folder: {exc.strerror}") from None
            if not os.access(folder, os.W_OK | os.X_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
                raise DatabaseError(f"cannot write the SQLite database {path}: permission denied "
                                    "(choose a writable database_url or fix the folder's permissions)")
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_pragmas(engine)
        return engine
    try:
        return sa.create_engine(url, pool_size=pool_size, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):
        raise DatabaseError(f"database_url {redact_url(parsed)}: not a database monitor can use; write "
                            "sqlite:///path/monitor.db or postgresql://user@host/dbname") from None


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own
        # transaction handling would defer it and make it DEFERRED).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Only writers take the write lock; a reader behind a long writer reads its snapshot.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One read-only transaction (deferred on SQLite: it neither waits for nor blocks writers).

    Use it for anything that only reads. The transaction ends with a commit (nothing to write)
    so the rows read stay loaded after the block, as with :func:`session_scope`.
    """
    with Session(reader(engine), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def reader(engine: Engine) -> Engine:
    """``engine`` for reads only: its transactions begin deferred on SQLite."""
    return engine.execution_options(**{READ_ONLY: True})


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config  # Alembic loads only when migrations are read or run

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``.

    An empty SQLite database upgraded to the head gets the head schema from ``sqlite_schema.sql``
    instead (a few milliseconds, where loading Alembic and running every migration takes half a
    second on a first start), when that file is of the head revision.
    """
    if revision == "head" and engine.dialect.name == "sqlite" and _create_sqlite_schema(engine):
        return
    _migrate(engine, revision)


def _migrate(engine: Engine, revision: str) -> None:
    """Run Alembic's migrations up to ``revision``."""
    try:
        with engine.connect() as connection:
            sqlite = engine.dialect.name == "sqlite"
            if sqlite:
                # SQLite alters a table by copying it; with foreign keys enforced, dropping the
                # old copy fails while other tables point at it. The pragma only works outside a
                # transaction, so it goes straight to the driver before the migration begins.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with connection.begin():
                    from alembic import command

                    command.upgrade(_alembic_config(connection), revision)
            finally:
                if sqlite:
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot migrate the database {redact_url(engine.url)}: {exc.orig}") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"migrating the database {redact_url(engine.url)} failed: {exc}") from exc


def _create_sqlite_schema(engine: Engine) -> bool:
    """Create the head schema in an empty SQLite database from ``sqlite_schema.sql``; False (nothing done)
    when the database is not empty or the file is missing or of another revision."""
    try:
        script = SQLITE_SCHEMA.read_text(encoding="utf-8")
    except OSError:
        return False
    first, _, body = script.partition("\n")
    revision = first.removeprefix(_SCHEMA_HEADER).strip()
    if not first.startswith(_SCHEMA_HEADER) or revision != head_revision():
        return False
    try:
        with engine.connect() as connection:
            with connection.begin():  # BEGIN IMMEDIATE: a second process starting now waits, then finds tables
                if connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
                    return False
                for statement in _statements(body):
                    connection.exec_driver_sql(statement)
                connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot create the database {redact_url(engine.url)}: {exc.orig}") from exc
    return True


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of ``script``, one at a time (a trigger's body holds semicolons of its own)."""
    import sqlite3

    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise DatabaseError(f"{SQLITE_SCHEMA} ends in an unfinished statement")


def sqlite_schema(engine: Engine) -> str:
    """The schema of a SQLite database migrated to the head, as the script :func:`upgrade` runs on an empty one.

    Every object SQLite does not create by itself (not the virtual tables' shadow tables, nor the indexes
    behind UNIQUE and PRIMARY KEY): tables, virtual tables among them, then indexes, then triggers.
    """
    with engine.connect() as connection:
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        rows = connection.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").all()
    virtual = [name for _type, name, sql in rows if sql.upper().startswith("CREATE VIRTUAL TABLE")]
    shadow = tuple(f"{name}_" for name in virtual)
    # Tables first (SQLite resolves foreign keys when rows are written, not when tables are created),
    # then indexes, then triggers, each by name: Alembic creates a batch's indexes in no fixed order.
    rank = {"table": 0, "index": 1, "trigger": 2}
    kept = sorted(((rank.get(kind, 3), name, sql) for kind, name, sql in rows
                   if not name.startswith("sqlite_") and not (kind == "table" and name.startswith(shadow))))
    return f"{_SCHEMA_HEADER}{revision}\n" + "".join(f"\n{sql};\n" for _rank, _name, sql in kept)


def write_sqlite_schema(path: Path = SQLITE_SCHEMA) -> None:
    """Write ``sqlite_schema.sql`` from a database the migrations build (after adding a migration)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/schema.db")
        try:
            _migrate(engine, "head")
            path.write_text(sqlite_schema(engine), encoding="utf-8")
        finally:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    try:
        with reader(engine).connect() as connection:
            # Alembic's own bookkeeping table, read directly: reading commands need not load Alembic.
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            return versions[0] if versions else None
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot reach the database {redact_url(engine.url)}: {exc.orig}") from exc


_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*(.+?)\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+?)\s*$", re.MULTILINE)


def head_revision() -> str | None:
    """The revision the code needs: the one migration no other migration follows.

    Read from the ``revision`` and ``down_revision`` lines of the migration files, so ``monitor status``
    (run every few seconds by health checks) does not load Alembic to learn one string. When the files
    do not form one line of migrations that way (a merge of branches, a header written differently),
    Alembic reads them.
    """
    heads = _heads_from_files()
    if heads is not None and len(heads) == 1:
        return heads.pop()
    return alembic_head_revision()


def _heads_from_files() -> set[str] | None:
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(text), _DOWN_REVISION.findall(text)
        if len(revision) != 1 or len(down) != 1:
            return None
        try:
            name, before = ast.literal_eval(revision[0]), ast.literal_eval(down[0])
        except (ValueError, SyntaxError):
            return None
        if not isinstance(name, str) or not (before is None or isinstance(before, str)):
            return None
        revisions.add(name)
        if before is not None:
            followed.add(before)
    return revisions - followed


def alembic_head_revision() -> str | None:
    """The head revision as Alembic reads it from the migration scripts."""
    from alembic.config import Config  # Alembic loads only when migrations are read or run

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(cfg).get_current_head()


def redact_url(url: sa.URL | str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = sa.engine.make_url(str(url)) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)
