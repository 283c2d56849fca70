"""Health: workers' heartbeats, stuck cycles, feeds due and deliveries pending, as one report.

``monitor status`` prints it (and exits 1 when unhealthy, for container health checks); a page can show it.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import store
from monitor.db import current_revision, head_revision, read_scope, redact_url


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``report`` is the JSON document ``monitor status --format json`` prints; ``problems`` why it is unhealthy."""

    report: dict[str, Any]
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return not self.problems


def stuck_cycles(workers: list[dict[str, Any]], *, now: datetime, stuck_after: int) -> list[str]:
    """A live worker whose poll or delivery cycle started more than ``stuck_after`` seconds ago is stuck:
    its heartbeat still beats (another thread sends it) while the work it exists for does not move."""
    problems = []
    for w in workers:
        running = w["last"].get("running") if w["alive"] and isinstance(w["last"], dict) else None
        for name, started in (running or {}).items():
            try:
                age = (now - datetime.fromisoformat(started)).total_seconds()
            except (TypeError, ValueError):
                continue
            if age > stuck_after:
                problems.append(f"worker {w['owner']}: {name} cycle running for {round(age)} s "
                                f"without finishing (limit {stuck_after} s)")
    return problems


def health_report(engine: Any, *, now: datetime, max_age: int, this_host: bool, stuck_after: int) -> HealthReport:
    """Read the health of a deployment. Raises ``DatabaseError`` when the database cannot be reached."""
    problems: list[str] = []
    report: dict[str, Any] = {"database": redact_url(engine.url)}
    revision, head = current_revision(engine), head_revision()
    report["revision"] = revision
    if revision != head:
        problems.append(f"database at revision {revision or '(empty)'}, code needs {head} (run 'monitor db upgrade')")
    else:
        with read_scope(engine) as session:
            workers = store.list_workers(session)
            counts = store.health_counts(session, now=now, overdue_after=max(max_age, 600))
        report["workers"] = [
            {"owner": w.owner, "hostname": w.hostname, "pid": w.pid,
             "started_at": w.started_at.isoformat() if w.started_at else None,
             "heartbeat_age_s": round((now - w.heartbeat_at).total_seconds()) if w.heartbeat_at else None,
             "alive": bool(w.heartbeat_at and (now - w.heartbeat_at).total_seconds() <= max_age),
             "last": json.loads(w.info)}
            for w in workers
        ]
        report.update(counts)
        mine = [w for w in report["workers"] if not this_host or w["hostname"] == socket.gethostname()]
        if not any(w["alive"] for w in mine):
            where = " on this host" if this_host else ""
            problems.append(f"no worker{where} has sent a heartbeat in the last {max_age} s")
        problems.extend(stuck_cycles(mine, now=now, stuck_after=stuck_after))
    report["healthy"] = not problems
    report["problems"] = problems
    return HealthReport(report=report, problems=problems)
