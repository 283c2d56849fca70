"""`monitor watchlists draft`: a draft watchlist from a folder of documents, never activated.

The synthetic folder follows another relationship (Iran–Russia arms transfers) in every
format the drafter reads: plain text, Markdown, HTML (with a script that must be ignored)
and a PDF written here with pypdf. The seed articles beside the repository are the
documents the seeded lists were written from; that test skips when they are absent (fails under ``CI=true``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject
from typer.testing import CliRunner

from monitor.cli import app
from monitor.domain import Document
from monitor.draft import make_draft, read_folder
from monitor.match import Matcher, load_watchlists, run_examples
from tests.helpers.shared import shared_dir

ROOT = Path(__file__).resolve().parents[2]
WATCHLISTS = ROOT / "watchlists"

TXT = """Iran delivers new batch of Shahed drones to Russia
Iran has delivered a new batch of Shahed attack drones to Russia, according to Ukrainian military intelligence.
The shipment reached the Caspian port of Makhachkala in March.
Russian forces have used the drones against Ukrainian energy infrastructure since the autumn of 2022.
"""

MD = """# Moscow and Tehran deepen arms ties

Russian Defense Minister Andrei Belousov hosted Iranian Defense Minister Aziz Nasirzadeh in Moscow on Tuesday.

The ministers discussed further supplies of missiles and ammunition, and the **Islamic Revolutionary Guard Corps
(IRGC)** was said to be training Russian crews.
"""

HTML = """<html><head><title>Iran ships Fath-360 missiles to Russia</title>
<script>var Iran = "Russia treaty tracker"; trackVisit();</script><style>p {color: red}</style></head>
<body><article><h1>Iran ships Fath-360 missiles to Russia</h1>
<p>Western officials said Iran had shipped Fath-360 close-range ballistic missiles to Russia.</p>
<p>Tehran denied supplying weapons for use in Ukraine.</p></article></body></html>
"""

PDF_TEXT = [
    "Iran and Russia mark first anniversary of strategic partnership treaty",
    "Iran and Russia marked the first anniversary of the comprehensive strategic partnership treaty,",
    "signed in Moscow on January 17, 2025. The treaty does not oblige Russia to defend Iran,",
    "but Moscow has continued to receive Iranian drones and missiles.",
]


def write_pdf(path: Path, lines: list[str]) -> None:
    """A one-page PDF with a real text layer, written with pypdf."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*")
    ops.append("ET")
    stream = ContentStream(None, writer)
    stream.set_data("\n".join(ops).encode("latin-1"))
    page.replace_contents(stream)
    with path.open("wb") as fh:
        writer.write(fh)


@pytest.fixture
def iran_russia(tmp_path: Path) -> Path:
    folder = tmp_path / "iran-russia"
    folder.mkdir()
    (folder / "drones.txt").write_text(TXT, encoding="utf-8")
    (folder / "ministers.md").write_text(MD, encoding="utf-8")
    (folder / "missiles.html").write_text(HTML, encoding="utf-8")
    write_pdf(folder / "treaty.pdf", PDF_TEXT)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    (folder / "notes.csv").write_text("ignored,file\n", encoding="utf-8")
    return folder


def test_every_format_is_read_and_a_bad_file_is_named_not_fatal(iran_russia: Path) -> None:
    read = read_folder(iran_russia)
    by_name = {s.name: s for s in read.sources}
    assert set(by_name) == {"drones.txt", "ministers.md", "missiles.html", "treaty.pdf"}
    assert "comprehensive strategic partnership treaty" in by_name["treaty.pdf"].text
    assert by_name["missiles.html"].title == "Iran ships Fath-360 missiles to Russia"
    assert "trackVisit" not in by_name["missiles.html"].text and "color" not in by_name["missiles.html"].text
    assert "**" not in by_name["ministers.md"].text and not by_name["ministers.md"].text.startswith("#")
    assert len(read.problems) == 1 and read.problems[0].startswith("broken.pdf: skipped")


def test_draft_for_another_relationship_finds_parties_actors_cues_and_dates(iran_russia: Path) -> None:
    read = read_folder(iran_russia)
    draft = make_draft(read.sources, WATCHLISTS, "iran_russia_arms")
    assert set(draft.parties) == {"iran", "russia"}
    assert "arms" in draft.families
    assert draft.new_actors["iran"].type == "country"
    people = {m.name: m for m in draft.new_actors.values() if m.type == "person"}
    assert people["Aziz Nasirzadeh"].side == "iran"
    assert "Andrei Belousov" not in people  # already in actors.yaml as belousov
    irgc = next(m for m in draft.new_actors.values() if "IRGC" in m.aliases)
    assert irgc.type == "body"
    treaty = next(e for e in draft.events if e.new)
    assert treaty.date == "2025-01-17" and set(treaty.parties) == {"iran", "russia"}
    assert draft.errors == [] and draft.example_failures == []
    assert draft.missed == [] and set(draft.caught) == {s.name for s in read.sources}


def test_draft_written_by_the_cli_validates_and_matches_new_reporting(iran_russia: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in WATCHLISTS.iterdir())
    out = tmp_path / "drafts"
    result = CliRunner().invoke(app, ["watchlists", "draft", str(iran_russia), "--name", "iran_russia_arms",
                                      "--out", str(out), "--watchlists", str(WATCHLISTS)])
    assert result.exit_code == 0, result.output
    assert "catches 4 of 4 documents" in result.output
    assert "broken.pdf: skipped" in result.output
    assert sorted(p.name for p in WATCHLISTS.iterdir()) == before  # never activated
    written = out / "iran_russia_arms"
    report = (written / "REPORT.md").read_text(encoding="utf-8")
    assert "| `treaty.pdf` |" in report and "**missed**" not in report
    # Activated by hand beside the live files, the draft loads cleanly and does its job.
    live = tmp_path / "live"
    live.mkdir()
    for path in WATCHLISTS.glob("*.yaml"):
        (live / path.name).write_bytes(path.read_bytes())
    for path in written.glob("*.yaml"):
        (live / path.name).write_bytes(path.read_bytes())
    loaded = load_watchlists(live)
    assert loaded.errors == []
    matcher = Matcher.compile(loaded)
    assert run_examples(loaded, matcher) == []

    def hits(title: str) -> bool:
        return "iran_russia_arms" in {m.watchlist for m in matcher.match(Document(title=title), on=date(2026, 3, 1))}

    assert hits("Russia receives a fresh shipment of Iranian ballistic missiles")
    assert not hits("Iran and Belarus sign trade deal")
    assert not hits("Russia supplies weapons to Belarus")


def test_bad_name_and_empty_folder_give_one_clear_message(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["watchlists", "draft", str(empty), "--name", "x", "--out", str(tmp_path),
                                 "--watchlists", str(WATCHLISTS)])
    assert result.exit_code == 2 and "no readable documents" in result.output
    result = runner.invoke(app, ["watchlists", "draft", str(tmp_path), "--name", "Bad Name",
                                 "--watchlists", str(WATCHLISTS)])
    assert result.exit_code == 2 and "lower_snake_case" in result.output and "Traceback" not in result.output


def test_draft_from_the_seed_articles_validates_and_catches_every_seed() -> None:
    read = read_folder(shared_dir("seeds"))
    seeds = [s for s in read.sources if s.name[:3].isdigit()]
    assert len(seeds) >= 5
    draft = make_draft(seeds, WATCHLISTS, "seeded_relations")
    assert set(draft.parties) >= {"dprk", "china", "russia"} and draft.parties[0] == "dprk"
    assert draft.errors == [] and draft.example_failures == []
    assert set(draft.caught) == {s.name for s in seeds}
    assert draft.missed == [], draft.caught
    assert {"visit", "commemoration"} <= set(draft.families)
    assert any(not e.new for e in draft.events)  # reuses the calendar's events (ties, treaties, PLA day)
