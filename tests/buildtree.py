"""Small package trees for builder tests: a busybox base image, sources, multi-stage."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

BUSYBOX = Path("/usr/bin/busybox")


def make_tarball(path: Path, files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


BASE_CONTAINERFILE = """\
FROM scratch AS base
COPY --chmod=0755 busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]
ENV PATH=/bin
ARG HELLO_SOURCE
ADD fetch/${HELLO_SOURCE} /src/
COPY --from=fetch ${HELLO_SOURCE} /archives/
WORKDIR /src/hello-1.0
RUN ./greet.sh base > /greeting
"""

APP_CONTAINERFILE = """\
ARG NS=rs
FROM ${NS}/bootstrap-base AS build
ARG VERSION
ENV GREETING="hi there"
COPY note.txt /work/
RUN <<-EOF
\tset -e
\tmkdir -p /out/bin /out/share
\techo "$GREETING $VERSION" > /out/share/version
\tcp /work/note.txt /out/share/
\tEOF
COPY --chmod=0644 <<EOF /out/share/inline
version $VERSION
EOF

FROM rs/bootstrap-base AS other
RUN echo other > /other.txt
RUN <<EOF
#!/bin/sh
echo ran by sh > /shebang
EOF

FROM scratch
COPY --from=build /out /
COPY --from=other /other.txt /share/
COPY --from=other /shebang /shebang
COPY --from=rs/bootstrap-base /greeting /share/greeting
LABEL org.example.name=app
CMD ["/bin/true"]
"""


def base_package(root: Path, containerfile: str = BASE_CONTAINERFILE) -> Path:
    """bootstrap-base: busybox in scratch with a shell, plus an unpacked source tarball."""
    d = root / "bootstrap" / "base"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, d / "busybox")
    mirror = root / "mirror"
    mirror.mkdir(exist_ok=True)
    digest = make_tarball(mirror / "hello-1.0.tar.gz",
                          {"hello-1.0/greet.sh": b"#!/bin/sh\necho hello from $1\n",
                           "hello-1.0/README": b"readme\n"})
    write(d / "package.toml", f'''
[package]
name = "base"
version = "1.0"
description = "busybox base"
license = "GPL-2.0-only"

[sources.hello]
version = "1.0"  # its own version: StageX passes HELLO_SOURCE only then
hash = "{digest}"
file = "hello-{{version}}.tar.gz"
mirrors = ["file:mirror/{{file}}"]
''')
    write(d / "Containerfile", containerfile)
    return d


def app_package(root: Path, containerfile: str = APP_CONTAINERFILE, outputs: str = "") -> Path:
    d = root / "core" / "app"
    write(d / "package.toml", f'''
[package]
name = "app"
version = "2.0"
description = "multi-stage app"
license = "MIT"
{outputs}
''')
    write(d / "note.txt", "a context file\n")
    write(d / "Containerfile", containerfile)
    return d


def make_tree(root: Path) -> Path:
    """``root/packages`` with namespace ``rs``: bootstrap-base and core-app."""
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base_package(tree)
    app_package(tree)
    return tree
