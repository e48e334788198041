"""Parse Containerfiles into typed, frozen instructions (no execution, no expansion).

``parse_file(path) -> Containerfile``; :mod:`.expand` is BuildKit's word expansion, which
only the planner (:mod:`rootseed.plan`) applies: ARG/ENV scoping lives there.
"""

from rootseed.containerfile.expand import Expansion, ExpansionError, expand, expand_word
from rootseed.containerfile.model import (
    NAMED_CONTEXTS,
    Add,
    Arg,
    Cmd,
    Containerfile,
    Copy,
    Entrypoint,
    Env,
    From,
    Heredoc,
    Instruction,
    Label,
    Run,
    Shell,
    Stage,
    User,
    Workdir,
)
from rootseed.containerfile.parse import SUPPORTED, chomp, parse_file, parse_string

__all__ = [
    "NAMED_CONTEXTS", "SUPPORTED", "Add", "Arg", "Cmd", "Containerfile", "Copy", "Entrypoint",
    "Env", "Expansion", "ExpansionError", "From", "Heredoc", "Instruction", "Label", "Run",
    "Shell", "Stage", "User", "Workdir", "chomp", "expand", "expand_word", "parse_file",
    "parse_string",
]
