"""Feed bytes to text: one documented order for choosing the character encoding.

Pure: bytes in, text out. Feeds from Korean, Chinese, Japanese and Russian sites
routinely label a legacy codec whose Windows superset is what they really send
(EUC-KR with CP949 syllables, Shift_JIS with CP932 characters, Big5 with HKSCS),
send a default-looking ``charset=ISO-8859-1`` header whatever the body is, or
carry a stray byte in otherwise valid UTF-8. A parser that switches the whole
document to another codec on one bad byte turns the feed into mojibake, so the
choice is made here, once, in this order:

1. the per-feed ``encoding:`` setting, when the operator gave one;
2. a byte-order mark (UTF-8, UTF-16, UTF-32);
3. XML's own signature for UTF-16/UTF-32/EBCDIC without a mark
   (``<?`` written in that encoding, XML 1.0 appendix F);
4. UTF-8, when the bytes are UTF-8 (a few invalid bytes among many valid
   multi-byte sequences still count: they are replaced, not a reason to
   switch codec);
5. the declared labels: the HTTP ``charset`` and the XML declaration, read
   through WHATWG-style aliases to the superset really in use (:data:`ALIASES`).
   The header wins, except that a default-looking header charset (ISO-8859-1,
   US-ASCII, windows-1252) does not override an XML declaration naming another
   encoding. A declared codec that cannot read most of the document loses to
   the next declared one;
6. detection (charset-normalizer), when nothing is declared, or when every
   declared codec leaves much of the document unreadable (a server's default
   ``charset=utf-8`` on an EUC-KR body) and the detected one reads it cleanly;
7. UTF-8.

Undecodable bytes are replaced with U+FFFD (``errors="replace"``).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["ALIASES", "Decoded", "codec_for", "decode_document", "xml_declared_encoding"]

# Labels as sites write them -> the codec that reads what they really send.
ALIASES: dict[str, str] = {
    "euc-kr": "cp949", "euckr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949", "ksc_5601": "cp949", "korean": "cp949", "x-windows-949": "cp949", "windows-949": "cp949",
    "uhc": "cp949", "cp949": "cp949", "ms949": "cp949", "iso-ir-149": "cp949", "csksc56011987": "cp949",
    "gb2312": "gb18030", "gbk": "gb18030", "gb_2312": "gb18030", "gb_2312-80": "gb18030", "x-gbk": "gb18030",
    "cp936": "gb18030", "ms936": "gb18030", "windows-936": "gb18030", "chinese": "gb18030", "csgb2312": "gb18030",
    "euc-cn": "gb18030", "iso-ir-58": "gb18030", "gb18030": "gb18030", "hz-gb-2312": "hz",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "csshiftjis": "cp932", "windows-31j": "cp932", "cp932": "cp932", "ms932": "cp932",
    "euc-jp": "euc_jis_2004", "x-euc-jp": "euc_jis_2004",
    "big5": "big5hkscs", "big5-hkscs": "big5hkscs", "cn-big5": "big5hkscs", "x-x-big5": "big5hkscs",
    "csbig5": "big5hkscs", "cp950": "big5hkscs",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252", "latin1": "cp1252",
    "latin-1": "cp1252", "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "windows-874": "cp874", "x-mac-cyrillic": "mac_cyrillic", "koi8-u": "koi8_u", "koi8-r": "koi8_r",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-euc-kr": "cp949", "x-euc-cn": "gb18030",
    "x-cp1251": "cp1251", "win-1251": "cp1251", "windows1251": "cp1251", "win1251": "cp1251", "cp-1251": "cp1251",
    "x-cp1252": "cp1252", "windows1252": "cp1252", "x-big5": "big5hkscs", "x-ms-cp932": "cp932",
}
# Header charsets that many servers send whatever the body is.
_DEFAULTISH = frozenset({"cp1252"})
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# "<?" (or "<" and a letter) in an encoding that ASCII cannot read, without a mark.
_SIGNATURES: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"^\x00\x00\x00[\x09\x0a\x0d\x20<]"), "utf-32-be"),
    (re.compile(rb"^[\x09\x0a\x0d\x20<]\x00\x00\x00"), "utf-32-le"),
    (re.compile(rb"^\x00[\x09\x0a\x0d\x20<{]\x00[\x09\x0a\x0d\x20?!a-zA-Z\"]"), "utf-16-be"),
    (re.compile(rb"^[\x09\x0a\x0d\x20<{]\x00[\x09\x0a\x0d\x20?!a-zA-Z\"]\x00"), "utf-16-le"),
    (re.compile(rb"^\x4c\x6f\xa7\x94"), "cp037"),  # "<?xm" in EBCDIC
)
_XML_DECL = re.compile(r"""^\s*<\?xml\b[^>]{0,500}?\bencoding\s*=\s*["']\s*([A-Za-z0-9._:()+-]{1,60})\s*["']""")
_XML_DECL_BYTES = re.compile(rb"""^\s*<\?xml\b[^>]{0,500}?\bencoding\s*=\s*["']\s*([A-Za-z0-9._:()+-]{1,60})\s*["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:()+-]{1,60})""", re.IGNORECASE)
_HIGH_BYTES = bytes(range(0x80, 0x100))
_DETECT_SAMPLE = 256 * 1024  # detection reads at most this much: enough to be sure, bounded in time


@dataclass(frozen=True, slots=True)
class Decoded:
    """The document as text, the codec that read it and why that codec was chosen."""

    text: str
    encoding: str
    source: str  # "setting", "bom", "signature", "utf-8", "header", "declaration", "detected", "default"


def codec_for(label: str | None) -> str | None:
    """The Python codec for an encoding label as feeds and servers write it; None if unknown."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if not key:
        return None
    try:
        info = codecs.lookup(ALIASES.get(key, key))
        # Python's own spelling of a label (euc_kr, gb2312) may itself have a superset to use.
        info = codecs.lookup(ALIASES.get(info.name.replace("_", "-"), info.name))
    except LookupError:
        return None
    # Labels of codecs that are not text encodings (rot13, base64...) are not charsets.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def header_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of an HTTP Content-Type, as written."""
    if not content_type:
        return None
    match = _CHARSET.search(content_type)
    return match.group(1) if match else None


def xml_declared_encoding(head: bytes) -> str | None:
    """The ``encoding`` named in an ASCII-compatible XML declaration at the start of ``head``."""
    match = _XML_DECL_BYTES.match(head[:1024])
    return match.group(1).decode("ascii") if match else None


def decode_document(content: bytes, *, content_type: str | None = None, override: str | None = None) -> Decoded:
    """Decode a fetched document in the order the module docstring gives. Never raises on odd bytes."""
    forced = codec_for(override)
    if forced:
        return Decoded(_strip_bom(_decode(content, forced)), forced, "setting")
    for bom, name in _BOMS:
        if content.startswith(bom):
            return Decoded(_decode(content[len(bom):], name), name, "bom")
    for pattern, name in _SIGNATURES:
        if pattern.match(content[:8]):
            return _from_signature(content, name)
    header = codec_for(header_charset(content_type))
    declared = codec_for(xml_declared_encoding(content))
    if _stateful_7bit(declared or header, content):  # ISO-2022-*: valid ASCII, yet not ASCII text
        name = declared or header or "utf-8"
        return Decoded(_decode(content, name), name, "declaration" if declared else "header")
    if _is_utf8(content):
        return Decoded(_decode(content, "utf-8"), "utf-8", "utf-8")
    candidates: list[tuple[str, str]] = []
    if header and header not in _DEFAULTISH:
        candidates.append((header, "header"))
    if declared:
        candidates.append((declared, "declaration"))
    if header and header in _DEFAULTISH:
        candidates.append((header, "header"))
    for name, source in candidates:
        if _reads_cleanly(content, name):
            return Decoded(_decode(content, name), name, source)
    detected = _detect(content)
    if candidates:
        # Every declared codec leaves much of the document unreadable: the declarations are wrong
        # (a server default of UTF-8 on an EUC-KR body). Detection decides, if it reads it cleanly.
        if detected and _reads_cleanly(content, detected):
            return Decoded(_decode(content, detected), detected, "detected")
        name, source = candidates[0]
        return Decoded(_decode(content, name), name, source)
    if detected:
        return Decoded(_decode(content, detected), detected, "detected")
    return Decoded(_decode(content, "utf-8"), "utf-8", "default")


def _decode(content: bytes, name: str) -> str:
    return content.decode(name, errors="replace")


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _from_signature(content: bytes, name: str) -> Decoded:
    """UTF-16/32 or EBCDIC without a mark: the declaration (read in that family) may refine it."""
    text = _decode(content, name)
    match = _XML_DECL.match(text)
    refined = codec_for(match.group(1)) if match else None
    if refined and name == "cp037" and refined != name:
        # Another EBCDIC page (cp500, cp1140...): "<?xml ... encoding" reads the same in all of them.
        return Decoded(_decode(content, refined), refined, "declaration")
    return Decoded(_strip_bom(text), name, "signature")


def _stateful_7bit(name: str | None, content: bytes) -> bool:
    return bool(name and name.startswith("iso2022") and b"\x1b" in content[:65536])


# A well-formed multi-byte UTF-8 sequence (2, 3 or 4 bytes).
_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _is_utf8(content: bytes) -> bool:
    """UTF-8, or UTF-8 with a few stray bytes among many valid multi-byte sequences.

    Legacy CJK and Cyrillic text produces invalid sequences all the time; one
    stray byte per twenty valid sequences is damage, not another encoding.
    """
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return True
    sequences = _UTF8_MULTI.findall(content)
    high = len(content) - len(content.translate(None, _HIGH_BYTES))
    stray = high - sum(len(s) for s in sequences)
    return len(sequences) >= 4 and stray * 20 <= len(sequences)


def _reads_cleanly(content: bytes, name: str) -> bool:
    """Whether ``name`` reads the document with at most a few replaced bytes."""
    text = content.decode(name, errors="replace")
    return text.count("\ufffd") <= max(3, len(text) // 1000)


def _detect(content: bytes) -> str | None:
    """charset-normalizer's guess for undeclared legacy bytes, mapped through :data:`ALIASES`.

    Single-byte code pages often read equally cleanly (Portuguese reads as well in
    windows-1257 as in windows-1252). The feed's language, which it writes in ASCII
    (``<language>pt-br</language>``, ``xml:lang``), picks among the guesses that read
    about as cleanly as the best one; without one, windows-1252 wins a tie.
    """
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    sample = content[:_DETECT_SAMPLE]
    matches = list(from_bytes(sample))
    if not matches:
        return None
    best = matches[0]
    language = _LANGUAGE.search(sample[:16384])
    code = (language.group(1) or language.group(2)).decode("ascii").lower() if language else ""
    expected = _LANGUAGE_CODECS.get(code, ())
    for codec in expected:
        for match in matches:
            if match.chaos <= best.chaos + 0.05 and codec_for(match.encoding) == codec_for(codec):
                return codec
    # Without a language, a tie among code pages goes to windows-1252, the web's default for undeclared text.
    for match in matches:
        if match.chaos <= best.chaos + 0.01 and codec_for(match.encoding) == "cp1252":
            return "cp1252"
    return codec_for(best.encoding)


_LANGUAGE = re.compile(rb"""<(?:\w+:)?language>\s*([A-Za-z]{2,3})\b|\bxml:lang\s*=\s*["']([A-Za-z]{2,3})\b""")
# The legacy code pages sites in each language use, most common first.
_LANGUAGE_CODECS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("en", "pt", "es", "fr", "de", "it", "nl", "da", "sv", "no", "nb", "nn", "fi", "is", "ca",
                     "gl", "eu", "af", "id", "ms", "sw", "ga", "cy"), ("cp1252",)),
    **dict.fromkeys(("cs", "sk", "pl", "hu", "sl", "hr", "ro", "bs", "sq"), ("cp1250", "iso8859-2")),
    **dict.fromkeys(("ru", "uk", "be", "bg", "sr", "mk", "kk"), ("cp1251", "koi8-r", "koi8-u")),
    "el": ("cp1253", "iso8859-7"), "tr": ("cp1254",), "he": ("cp1255", "iso8859-8"), "ar": ("cp1256",),
    "fa": ("cp1256",), "lt": ("cp1257",), "lv": ("cp1257",), "et": ("cp1257",), "vi": ("cp1258",),
    "th": ("cp874",), "ko": ("cp949",), "ja": ("cp932", "euc-jis-2004"), "zh": ("gb18030", "big5hkscs"),
}
