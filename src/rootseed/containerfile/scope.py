"""Docker's ARG/ENV scoping and which instructions expand variables.

* ARGs before the first FROM are *global*: only FROM lines see them. Inside a stage a
  global ARG is visible only after ``ARG NAME`` re-declares it (taking the global value).
* ``ARG NAME=default`` inside a stage: the ``--build-arg`` value if given, else the
  default (itself expanded). Undeclared build args are invisible.
* ENV values are expanded with the variables as they were *before* the instruction
  (``ENV A=1 B=$A`` gives B the old A). ENV wins over an ARG of the same name.
* RUN sees the declared ARGs and the ENV as its environment (plus Docker's default
  PATH when none is set); ENV (not ARG) persists into the image and child stages.
* Expanded: FROM (image, --platform), ARG defaults, ENV, LABEL, WORKDIR, USER, and
  COPY/ADD sources, destination and flags (unquoted heredoc bodies in raw mode).
  Not expanded: RUN, CMD, ENTRYPOINT, SHELL (the shell in the container does it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rootseed.containerfile.expand import ExpansionError, expand
from rootseed.containerfile.model import Arg

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Instructions whose arguments Docker expands before running them.
EXPANDING = frozenset({"FROM", "ARG", "ENV", "LABEL", "WORKDIR", "USER", "COPY", "ADD"})


def platform_args(platform: str = "linux/amd64") -> dict[str, str]:
    """BuildKit's automatic platform ARGs (global scope; a stage must declare them)."""
    parts = platform.split("/")
    os_, arch = parts[0], parts[1] if len(parts) > 1 else ""
    variant = parts[2] if len(parts) > 2 else ""
    values: dict[str, str] = {}
    for prefix in ("TARGET", "BUILD"):
        values.update({f"{prefix}PLATFORM": platform, f"{prefix}OS": os_,
                       f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return values


def try_expand(word: str, env: Mapping[str, str]) -> str:
    """Expand, or return the word unchanged when it cannot be expanded (for listings)."""
    try:
        return expand(word, env)
    except ExpansionError:
        return word


def global_arg_values(global_args: Iterable[Arg], build_args: Mapping[str, str],
                      automatic: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values of the ARGs declared before the first FROM (what FROM lines see)."""
    values: dict[str, str] = dict(automatic if automatic is not None else platform_args())
    for instruction in global_args:
        for name, default in instruction.args:
            if name in build_args:
                values[name] = build_args[name]
            elif default is not None:
                values[name] = expand(default, values)
    return values


class StageScope:
    """The variables of one stage while its instructions are processed in order."""

    def __init__(self, global_values: Mapping[str, str], build_args: Mapping[str, str],
                 env: Iterable[tuple[str, str]] = ()) -> None:
        self._global = dict(global_values)
        self._build_args = dict(build_args)
        self.args: dict[str, str | None] = {}
        self.env: dict[str, str] = dict(env)  # inherited from the base image/stage

    def variables(self) -> dict[str, str]:
        """What ``$X`` sees now: declared ARGs with a value, overridden by ENV."""
        merged = {k: v for k, v in self.args.items() if v is not None}
        merged.update(self.env)
        return merged

    def expand(self, word: str, *, quotes: bool = True) -> str:
        return expand(word, self.variables(), quotes=quotes)

    def declare_arg(self, name: str, default: str | None) -> None:
        if name in self._build_args:
            self.args[name] = self._build_args[name]
        elif default is not None:
            self.args[name] = self.expand(default)
        else:
            self.args[name] = self._global.get(name)

    def set_env(self, pairs: Iterable[tuple[str, str]]) -> None:
        before = self.variables()
        updates = {expand(k, before): expand(v, before) for k, v in pairs}
        self.env.update(updates)

    def run_environment(self) -> dict[str, str]:
        """The environment of a RUN step (ARGs + ENV, default PATH when unset)."""
        environment = self.variables()
        environment.setdefault("PATH", DEFAULT_PATH)
        return environment
