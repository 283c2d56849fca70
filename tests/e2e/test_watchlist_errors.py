"""A broken watchlist is reported with file and line; the other lists keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.e2e.conftest import ROOT, Cli, write_config


def test_yaml_error_names_file_and_line_and_others_keep_matching(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    broken = folder / "broken.yaml"
    broken.write_text("kind: watchlist\nname: broken\ntitle: [unclosed\n", encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml", watchlists_dir=str(folder)))

    validate = cli("watchlists", "validate", check=False)
    assert validate.returncode == 2
    assert f"{broken}:" in validate.stderr

    line = json.dumps({"id": "v", "title": "Chinese delegation led by Zhao Leji arrives in Pyongyang",
                       "summary": "The delegation held talks with Kim Jong Un."})
    result = cli("match", input=line + "\n")
    assert "broken.yaml" in result.stderr
    assert "delegation_visits" in {m["watchlist"] for m in json.loads(result.stdout)["matches"]}


def test_validate_reports_hostile_files_with_file_and_line_and_no_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    head = "kind: watchlist\nname: hostile\ntitle: H\nversion: '1'\nseverity: low\n"
    (folder / "loop.yaml").write_text(head + "rules: &loop\n  - id: a\n    all: *loop\n", encoding="utf-8")
    (folder / "alt.yaml").write_text(
        head.replace("hostile", "alt") + 'cues:\n  c: ["' + "{a|b}" * 26 + '"]\nrules:\n  - id: a\n    all: [c]\n',
        encoding="utf-8")
    (folder / "regex.yaml").write_text(
        head.replace("hostile", "rx") + "rules:\n  - id: a\n    prefilter: [said]\n    all:\n"
        "      - regex: '(?<=kim) said'\n", encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml", watchlists_dir=str(folder)))

    validate = cli("watchlists", "validate", check=False)
    assert validate.returncode == 2
    assert "Traceback" not in validate.stderr and "Error:" not in validate.stderr
    assert f"{folder / 'loop.yaml'}:8: invalid YAML: alias *loop refers to a value that contains it" \
        in validate.stderr
    assert f"{folder / 'alt.yaml'}:7: alias" in validate.stderr and "expands to 67108864 variants, limit 1000" \
        in validate.stderr
    assert f"{folder / 'regex.yaml'}:10: rule 'a': regex" in validate.stderr and "RE2 syntax" in validate.stderr
    assert "3 valid watchlists" in validate.stdout
