"""Feed management through the CLI: OPML import/export, list, reset."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.opml import parse_opml
from tests.e2e.conftest import ROOT, Cli, write_config

OPML = ROOT / "tests" / "data" / "opml"


def test_opml_import_then_export_round_trips_titles_and_categories(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml", allow_private_networks=False))
    source = OPML / "reader-export.opml"
    imported = cli("feeds", "import", str(source))
    expected = parse_opml(source.read_bytes(), source=str(source))
    assert f"imported {len(expected)} feeds" in imported.stdout
    again = cli("feeds", "import", str(source))
    assert "imported 0 feeds" in again.stdout and f"{len(expected)} already known" in again.stdout
    exported = cli("feeds", "export").stdout.encode()
    back = parse_opml(exported, source="export")
    assert {(f.url, f.title, f.category) for f in back} == {(f.url, f.title, f.category) for f in expected}
    listing = [json.loads(line) for line in cli("feeds", "list", "--format", "jsonl").stdout.splitlines()]
    assert {row["origin"] for row in listing} == {"import"}


def test_bad_opml_is_a_clear_error(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    for name in ("malformed.opml", "billion-laughs.opml"):
        result = cli("feeds", "import", str(OPML / name), check=False)
        assert result.returncode == 2, name
        assert name in result.stderr
    assert cli("feeds", "list").stdout == ""


def test_private_addresses_in_opml_are_refused_unless_allowed(tmp_path: Path) -> None:
    opml = tmp_path / "private.opml"
    opml.write_text('<?xml version="1.0"?><opml version="2.0"><head/><body>'
                    '<outline text="Intranet" xmlUrl="http://10.1.2.3/feed.xml"/>'
                    '<outline text="Public" xmlUrl="https://news.example.org/rss"/></body></opml>', encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml", allow_private_networks=False))
    result = cli("feeds", "import", str(opml))
    assert "imported 1 feeds" in result.stdout and "1 refused" in result.stdout
    assert "10.1.2.3" in result.stderr


def test_opml_feeds_in_an_allowed_network_are_imported_like_they_would_be_polled(tmp_path: Path) -> None:
    opml = tmp_path / "intranet.opml"
    opml.write_text('<?xml version="1.0"?><opml version="2.0"><head/><body>'
                    '<outline text="Intranet" xmlUrl="http://10.1.2.3/feed.xml"/>'
                    '<outline text="Other private" xmlUrl="http://192.168.1.1/feed.xml"/></body></opml>',
                    encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml", allow_private_networks=False, allowed_networks=["10.0.0.0/8"]))
    result = cli("feeds", "import", str(opml))
    assert "imported 1 feeds" in result.stdout and "1 refused" in result.stdout
    assert "192.168.1.1" in result.stderr
    listing = [json.loads(line) for line in cli("feeds", "list", "--format", "jsonl").stdout.splitlines()]
    assert [row["url"] for row in listing] == ["http://10.1.2.3/feed.xml"]
