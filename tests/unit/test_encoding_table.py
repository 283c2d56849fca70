"""Decoding table: feed bytes + HTTP header (+ per-feed setting) -> the title text a reader sees.

The shapes are the ones Korean, Chinese, Japanese and Russian sites serve: a legacy label whose
Windows superset is what is really sent (EUC-KR with CP949 syllables, Shift_JIS with CP932
characters, Big5 with HKSCS, GB2312 with GBK/GB18030), default-looking header charsets on
non-Latin bodies, UTF-8 mislabelled as a legacy codec, stray bytes, and XML in UTF-16/32 or
EBCDIC without a byte-order mark.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.ingest.parse import parse_feed

URL = "https://news.example.kr/rss.xml"


def _rss(title: str, *, declared: str | None) -> str:
    decl = f'<?xml version="1.0" encoding="{declared}"?>\n' if declared else '<?xml version="1.0"?>\n'
    return (f"{decl}<rss version=\"2.0\"><channel><title>Channel</title><link>https://news.example.kr/</link>"
            f"<item><title>{title}</title><link>https://news.example.kr/1</link></item></channel></rss>")


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    header: str | None
    expected: str
    encoding: str | None = None  # the per-feed ``encoding:`` setting


KO = "북한 외무상 똠방각하 평양 방문"  # 똠 is a CP949-only syllable (not in KS X 1001)
JA = "北朝鮮外相が訪問①"  # ① is a CP932 (NEC) character, not in JIS X 0208
HK = "北韓外長訪問嘅消息"  # 嘅 is an HKSCS character
ZH = "朝鲜外长访问中国 镕"  # 镕 is in GBK/GB18030, not in GB2312
RU = "Визит министра иностранных дел КНДР в Москву"

CASES = [
    Case("euc-kr header, cp949 syllable", _rss(KO, declared="euc-kr").encode("cp949"),
         "text/xml; charset=euc-kr", KO),
    Case("ks_c_5601-1987 label", _rss(KO, declared="ks_c_5601-1987").encode("cp949"),
         "application/rss+xml; charset=ks_c_5601-1987", KO),
    Case("euc-kr declared only", _rss(KO, declared="EUC-KR").encode("cp949"), None, KO),
    Case("shift_jis + cp932 character", _rss(JA, declared="Shift_JIS").encode("cp932"),
         "text/xml; charset=Shift_JIS", JA),
    Case("big5 + hkscs character", _rss(HK, declared="big5").encode("big5hkscs"), "text/xml; charset=big5", HK),
    Case("gb2312 + gbk character", _rss(ZH, declared="gb2312").encode("gb18030"), "text/xml; charset=gb2312", ZH),
    Case("windows-1251 with byte 0x98", _rss(RU, declared="windows-1251").encode("cp1251").replace(
        "Москву".encode("cp1251"), "Москву".encode("cp1251") + b"\x98"),
        "text/xml; charset=windows-1251", RU + "\ufffd"),
    Case("utf-8 with one stray cp1251 byte", _rss(RU + " \xe9", declared="utf-8").encode("utf-8").replace(
        "\xe9".encode(), b"\xe9"), None, RU + " \ufffd"),
    Case("utf-8 body declared windows-1251", _rss(RU, declared="windows-1251").encode("utf-8"),
         "text/xml; charset=windows-1251", RU),
    Case("utf-8 BOM beats a wrong declaration", b"\xef\xbb\xbf" + _rss(RU, declared="windows-1251").encode("utf-8"),
         None, RU),
    Case("ISO-8859-1 header on a cp1251 body", _rss(RU, declared="windows-1251").encode("cp1251"),
         "text/xml; charset=ISO-8859-1", RU),
    Case("ISO-8859-1 header on a GBK body", _rss(ZH, declared="GBK").encode("gb18030"),
         "application/xml; charset=iso-8859-1", ZH),
    Case("ISO-8859-1 header on an EUC-KR body", _rss(KO, declared="euc-kr").encode("cp949"),
         "text/xml; charset=ISO-8859-1", KO),
    Case("US-ASCII header on a koi8-r body", _rss(RU, declared="koi8-r").encode("koi8-r"),
         "text/xml; charset=us-ascii", RU),
    Case("utf-16le without BOM as text/xml", _rss(KO, declared="utf-16").encode("utf-16-le"), "text/xml", KO),
    Case("utf-16be without BOM, no declaration", _rss(RU, declared=None).encode("utf-16-be"), "text/xml", RU),
    Case("utf-32le with BOM", _rss(ZH, declared="utf-32").encode("utf-32"), None, ZH),
    Case("EBCDIC (cp037) without BOM", _rss("Visit to Pyongyang", declared="ibm037").encode("cp037"),
         None, "Visit to Pyongyang"),
    Case("latin-1 header on a cp1252 body", _rss("“Talks” – résumé", declared=None).encode("cp1252"),
         "text/xml; charset=ISO-8859-1", "“Talks” – résumé"),
    Case("nothing declared, cp1251 body", _rss(RU + ". " + RU.lower() + " сегодня", declared=None).encode("cp1251"),
         "text/xml", RU + ". " + RU.lower() + " сегодня"),
    Case("nothing declared, euc-kr body", _rss(KO + " 조선중앙통신 보도", declared=None).encode("cp949"),
         "text/xml", KO + " 조선중앙통신 보도"),
    # Added after the fix (the rows above were written before it):
    Case("server default utf-8 header on an undeclared euc-kr body", _rss(KO + " 조선중앙통신 보도", declared=None)
         .encode("cp949"), "text/xml; charset=UTF-8", KO + " 조선중앙통신 보도"),
    Case("utf-8 header, euc-kr declaration and body", _rss(KO, declared="euc-kr").encode("cp949"),
         "application/rss+xml; charset=utf-8", KO),
    Case("x-euc-kr label", _rss(KO, declared="x-euc-kr").encode("cp949"), None, KO),
    Case("quoted header charset", _rss(RU, declared=None).encode("cp1251"), 'text/xml; charset="windows-1251"', RU),
    Case("per-feed encoding overrides a wrong header", _rss(RU, declared="utf-8").encode("cp1251"),
         "text/xml; charset=utf-8", RU, encoding="windows-1251"),
    Case("per-feed encoding label alias", _rss(KO, declared=None).encode("cp949"),
         "text/xml; charset=iso-8859-1", KO, encoding="euc-kr"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_feed_text_is_decoded_right(case: Case) -> None:
    kwargs = {"encoding": case.encoding} if case.encoding else {}
    feed = parse_feed(case.body, url=URL, content_type=case.header, **kwargs)  # type: ignore[arg-type]
    assert [e.title for e in feed.entries] == [case.expected]
