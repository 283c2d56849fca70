"""OPML import/export: real-world shapes, round trips, clear errors, entity attacks refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.opml import OpmlFeed, export_opml, parse_opml

DATA = Path(__file__).resolve().parents[1] / "data" / "opml"


def read(name: str) -> list[OpmlFeed]:
    return parse_opml((DATA / name).read_bytes(), source=name)


def test_reader_export_with_nested_folders_types_and_html_urls() -> None:
    assert read("reader-export.opml") == [
        OpmlFeed("https://en.yna.co.kr/RSS/nk.xml", "Yonhap – North Korea", "Korea"),
        OpmlFeed("https://kcnawatch.org/feed/", "KCNA Watch", "Korea"),  # text wins over title
        OpmlFeed("https://example.org/rodong/rss", "Rodong Sinmun (mirror)", "Korea/State media"),
        OpmlFeed("https://example.com/xinhua/world.atom", "Xinhua World", "China & Russia"),  # title only
        OpmlFeed("https://tass.example/rss/v2.xml", None, "China & Russia"),  # no name at all
        OpmlFeed("https://www.38north.org/feed/", "38 North", None),
    ]


def test_bookmarks_empty_folders_file_urls_and_repeats_are_skipped() -> None:
    urls = [f.url for f in read("reader-export.opml")]
    assert "file:///etc/passwd" not in urls
    assert "https://example.net/page.html" not in urls
    assert urls.count("https://www.38north.org/feed/") == 1


def test_attribute_case_declared_encoding_and_slash_in_folder_name() -> None:
    assert read("lowercase-attrs.opml") == [
        OpmlFeed("https://www.lemonde.fr/asie-pacifique/rss_full.xml", "Le Monde Asie-Pacifique", "Europe-Asia desk"),
        OpmlFeed("https://example.org/caf%C3%A9.rss", "Café news", None),
    ]


def test_round_trip_keeps_urls_titles_and_categories() -> None:
    feeds = [
        OpmlFeed("https://en.yna.co.kr/RSS/nk.xml", "Yonhap <NK> & \"friends\"", "Korea"),
        OpmlFeed("https://example.org/rodong/rss?lang=en&x=1", "Rodong", "Korea/State media/DPRK"),
        OpmlFeed("https://tass.example/rss/v2.xml", None, "Russia"),
        OpmlFeed("https://www.38north.org/feed/", "38 North", None),
        OpmlFeed("https://example.cn/新华.xml", "新华社", "中国"),
        OpmlFeed("https://example.org/second-korea", "Second in Korea", "Korea"),
    ]
    document = export_opml(feeds, title="watch list")
    assert document.startswith(b"<?xml")
    assert b'version="2.0"' in document
    back = parse_opml(document, source="exported.opml")
    # Folders group their feeds, so the second Korea feed moves up next to the first.
    assert sorted(back, key=feeds.index) == feeds
    assert back == parse_opml(export_opml(back), source="again.opml")


def test_export_nests_categories_as_folder_outlines() -> None:
    document = export_opml([OpmlFeed("https://a.example/rss", "A", "Asia/Korea")]).decode()
    assert '<outline text="Asia" title="Asia">' in document
    assert '<outline text="Korea" title="Korea">' in document
    assert 'type="rss" text="A" title="A" xmlUrl="https://a.example/rss"' in document
    assert "<title>monitor feeds</title>" in document


def test_export_drops_characters_xml_cannot_carry() -> None:
    document = export_opml([OpmlFeed("https://a.example/rss", "bell\x07 title", None)])
    assert parse_opml(document, source="x")[0].title == "bell title"


def test_malformed_xml_names_the_file_and_line() -> None:
    # Line 6 leaves an outline open; the parser notices at </body> on line 8.
    with pytest.raises(ConfigError, match=r"^malformed\.opml:8: not well-formed XML \(mismatched tag"):
        read("malformed.opml")


def test_document_without_body_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"no-body\.opml: the OPML document has no <body>"):
        read("no-body.opml")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the OPML file is empty"),
    (b"   \n", "the OPML file is empty"),
    (b"<rss version='2.0'><channel/></rss>", r"not an OPML document \(the top element is <rss>"),
    (b"not xml at all", r"list\.opml:1: not well-formed XML"),
    (b"<opml><body><outline text='&nbsp;'/></body></opml>", r"list\.opml:1: not well-formed XML \(undefined entity"),
])
def test_bad_documents_raise_config_error(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_opml(data, source="list.opml")


@pytest.mark.parametrize(("name", "line"), [("billion-laughs.opml", 3), ("external-entity.opml", 2)])
def test_entity_declarations_are_refused_before_expansion(name: str, line: int) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}:{line}: the DOCTYPE declares entities; refused"):
        read(name)


def test_doctype_without_entities_is_fine() -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE opml>\n<opml version="2.0"><body>' \
           b'<outline text="A" xmlUrl="https://a.example/rss"/></body></opml>'
    assert parse_opml(data, source="x") == [OpmlFeed("https://a.example/rss", "A", None)]


def test_outlines_outside_body_are_ignored() -> None:
    data = (b'<opml version="2.0"><head><outline text="H" xmlUrl="https://h.example/rss"/></head>'
            b'<body/></opml>')
    assert parse_opml(data, source="x") == []
