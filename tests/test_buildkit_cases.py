"""Each BuildKit reference case, rebuilt by rootseed, is BuildKit's image byte for byte.

``cases/NAME.context.tar`` is built as StageX builds a package ``test/NAME`` (version
1.0, linux/amd64) in a tree of namespace ``stagex`` (BuildKit's format), and the
``oci-archive`` rootseed writes of it is compared with ``out/NAME.oci.tar`` as bytes:
every blob (layers, config, manifest, image index), ``index.json`` (with the image name
BuildKit was given, ``test-NAME``) and ``oci-layout``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from buildkit_reference import CASES, archive_files, build_case, reference
from rootseed.oci.buildkit.export import write_archive


@pytest.mark.parametrize("case", CASES)
def test_case_is_buildkit_s_image_byte_for_byte(tmp_path: Path, case: str) -> None:
    ref = reference()
    layout = build_case(tmp_path, case)
    want = (ref / "out" / f"{case}.digest").read_text().strip()
    out = io.BytesIO()
    write_archive(layout, out, image_name=f"test-{case}")
    mine = out.getvalue()
    theirs = (ref / "out" / f"{case}.oci.tar").read_bytes()
    got, expected = archive_files_of(mine), archive_files(ref / "out" / f"{case}.oci.tar")
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], f"{case}: {name} differs"
    assert want.partition(":")[2] in "".join(got)
    assert mine == theirs


def archive_files_of(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        found: dict[str, bytes] = {}
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                found[member.name] = f.read()
        return found
