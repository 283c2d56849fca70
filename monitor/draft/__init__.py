"""Drafting a watchlist from a folder of documents (``monitor watchlists draft``).

Reads text, Markdown, HTML and PDF files, finds the parties, actors, event cues, dates and
anniversaries they mention, and writes a draft watchlist (with draft actor and calendar
files) and a report of what each rule catches, into an output folder. Never activates it.
"""

from monitor.draft.documents import ReadResult, Source, read_document, read_folder
from monitor.draft.drafter import Draft, DraftError, make_draft, render_report, write_draft

__all__ = ["Draft", "DraftError", "ReadResult", "Source", "make_draft", "read_document", "read_folder",
           "render_report", "write_draft"]
