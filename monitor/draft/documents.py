"""Reading a folder of documents (plain text, Markdown, HTML, PDF) into plain text.

Why its own module: drafting a watchlist starts from whatever an analyst saved — exported
reports, saved web pages, PDFs — and every format must come out as the same plain text with
a title and, when the document states one, a date. A file that cannot be read is reported by
name and skipped; the others are still used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf")

_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
               "section", "article", "header", "footer", "blockquote", "pre", "hr", "dd", "dt", "figcaption"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_ISO_DATE = re.compile(r"\b((?:19|20)\d{2})-(\d{2})-(\d{2})\b")


@dataclass(frozen=True, slots=True)
class Source:
    """One document: its file name, a title (first line or HTML <title>), its text and date."""

    name: str
    title: str
    text: str
    published: date | None = None


@dataclass
class ReadResult:
    sources: list[Source]
    problems: list[str]


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, one line per block element; the <title> kept apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document; scripts and styles dropped, blocks on their own lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), _tidy("".join(parser.parts))


def markdown_to_text(md: str) -> str:
    """Markdown as plain text: headings, emphasis, link targets and code fences removed."""
    text = re.sub(r"```.*?```", "", md, flags=re.S)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.M)
    text = re.sub(r"^\s*[-*+]\s+", "", text, flags=re.M)
    text = re.sub(r"(\*\*|__|\*|`)", "", text)
    # A single line break inside a paragraph is a soft wrap in Markdown, not a new sentence.
    text = re.sub(r"(?<=\S)[ \t]*\n(?=[ \t]*[^\s#>|-])", " ", text)
    return _tidy(text)


def pdf_to_text(path: Path) -> str:
    """Text of every page of a PDF (pypdf); pages without a text layer give nothing."""
    from pypdf import PdfReader

    # pypdf logs its repairs of damaged files; the one message the operator needs is ours.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(str(path))
    # PDF lines are hard-wrapped: a line break is a space unless a sentence or heading ends there.
    pages = [re.sub(r"(?<![.!?:。])[ \t]*\n(?=[ \t]*[a-z0-9(“\"])", " ", page.extract_text() or "")
             for page in reader.pages]
    return _tidy("\n\n".join(pages))


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip(" •*-#\t")
        if len(line.split()) > 3 or (len(line) > 3 and not line.isascii()):
            return line[:300]
    return ""


def _date_in(text: str) -> date | None:
    """A date stated near the top of the document (``date 2023-09-10``), else None."""
    m = _ISO_DATE.search(text[:400])
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def read_document(path: Path) -> Source:
    """One file as a :class:`Source`; raises ValueError with a plain reason when it cannot be read."""
    suffix = path.suffix.lower()
    title = ""
    if suffix == ".pdf":
        try:
            text = pdf_to_text(path)
        except Exception as exc:  # pypdf raises many kinds for damaged files; the reason is what matters
            raise ValueError(f"not a readable PDF ({exc})") from None
    else:
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        if suffix in (".html", ".htm"):
            title, text = html_to_text(raw)
        elif suffix in (".md", ".markdown"):
            text = markdown_to_text(raw)
        else:
            text = _tidy(raw)
    if not text.strip():
        raise ValueError("no text in it (a scanned PDF needs OCR first)")
    return Source(path.name, title or _first_line(text), text, _date_in(text))


def read_folder(folder: Path) -> ReadResult:
    """Every readable document in ``folder`` (not recursive), in name order; problems named per file."""
    result = ReadResult([], [])
    try:
        paths = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as exc:
        result.problems.append(f"{folder}: cannot read the folder ({exc.strerror})")
        return result
    for path in paths:
        if path.suffix.lower() not in SUFFIXES:
            continue
        try:
            result.sources.append(read_document(path))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            result.problems.append(f"{path.name}: skipped, {reason}")
    return result
