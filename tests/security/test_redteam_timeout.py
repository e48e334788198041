"""Red-team: --step-timeout values that float() accepts but are no limit at all.

``parse_duration`` used ``float(text)``, which takes ``nan``, ``inf`` and ``1e400``: a
step then ran with no effective limit (NaN never compares greater), and ``describe`` of
such a value raised OverflowError/ValueError (an internal error once a step timed out).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import HostileTree
from kinds import cli_error, raises_kind
from rootseed.errors import ErrorKind
from rootseed.sandbox.timeout import parse_duration


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "infinity", "1e400",
                                  "9" * 400, "1e20"])
def test_non_finite_or_absurd_durations_are_refused(text: str) -> None:
    with raises_kind(ErrorKind.USAGE):
        parse_duration(text)


def test_year_is_the_largest_limit() -> None:
    assert parse_duration("365d") == 365 * 86400.0


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_cli_refuses_a_non_finite_step_timeout(tmp_path: Path, text: str) -> None:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    proc = tree.build("test-plain", extra=("--step-timeout", text, "--json"))
    cli_error(proc, ErrorKind.USAGE, exit_code=2)
    assert not (tree.out / "test-plain").exists()
