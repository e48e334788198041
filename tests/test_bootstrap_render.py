"""What ``rootseed bootstrap --demo`` shows on an 80-column terminal: the panel's title in
full, counted nouns that agree with their number."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from rootseed.bootstrap import bootstrap
from rootseed.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)")


def test_demo_panel_and_wording_at_80_columns(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import rootseed.cli.bootstrap as cli_bootstrap

    settings = Settings(cache_dir=tmp_path / "cache", out=tmp_path / "out", offline=True,
                        json=True, jobs=2)
    report = bootstrap(settings, demo=True)
    console = Console(width=80, record=True, force_terminal=True, color_system=None)
    monkeypatch.setattr(cli_bootstrap, "out", console)
    cli_bootstrap.render(report)
    text = console.export_text()
    first = text.splitlines()[0]
    assert " rootseed bootstrap --demo " in first and "…" not in first
    assert "1 tool in /bin" in text and "1 tools" not in text
    assert "/bin holds exactly the 1 expected file, each" in text
    assert "2 manifest digests equal the recorded ones" in text
    assert all(len(line) <= 80 for line in text.splitlines())
