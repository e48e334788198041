"""Image reference names: ``ns/name:tag`` and ``ns/name@digest`` without tag or digest.

Which images a Containerfile refers to comes from ``rootseed.containerfile``.
"""

from __future__ import annotations


def strip_tag(ref: str) -> str:
    """``ns/name:tag`` or ``ns/name@sha256:…`` → ``ns/name``."""
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
    return ref
