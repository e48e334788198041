"""Independent Python re-implementations of the stage0 tools.

Each tool is one module with a pure function on bytes and a ``main(argv) -> int`` that
takes the original tool's command line. They exist to *check* the binary chain
(``rootseed crosscheck``), never to replace it inside a build. Standard library only.
"""

from __future__ import annotations

#: ``rootseed tool NAME`` → module under ``rootseed.tools`` that provides ``main(argv)``.
TOOLS: dict[str, str] = {
    "hex0": "hex0",
    "hex1": "hex1",
    "hex2": "hex2",
    "hex2-0": "hex2_0",
    "catm": "catm",
    "sha256sum": "sha256sum",
    "kaem-minimal": "kaem_minimal",
    "M0": "m0",
    "M1": "m1",
    "blood-elf": "blood_elf",
    "cc_x86": "cc_x86",
}
