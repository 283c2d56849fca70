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
