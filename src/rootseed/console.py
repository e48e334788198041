"""Where output goes: results on stdout, progress and diagnostics on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

#: Diagnostics, progress bars and summaries for people.
err = Console(stderr=True, highlight=False)
#: Results (tables for people; JSON for machines goes through :func:`emit_json`).
out = Console(highlight=False)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no insignificant whitespace: the one JSON form rootseed writes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: How many JSON documents :func:`emit_json` has written (the CLI writes an error as JSON
#: only when the command wrote none: stdout stays one document).
emitted = 0


def emit_json(obj: Any) -> None:
    """Print a machine-readable result on stdout (pretty, stable key order)."""
    global emitted
    sys.stdout.write(json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    emitted += 1
