"""Parse Containerfiles into typed, frozen instructions (no execution).

``parse_file(path) -> Containerfile``; Docker's expansion and ARG/ENV scoping live in
:mod:`.expand` and :mod:`.scope`.
"""

from rootseed.containerfile.expand import ExpansionError, expand
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
from rootseed.containerfile.scope import DEFAULT_PATH, StageScope, global_arg_values

__all__ = [
    "DEFAULT_PATH", "NAMED_CONTEXTS", "SUPPORTED", "Add", "Arg", "Cmd", "Containerfile", "Copy",
    "Entrypoint", "Env", "ExpansionError", "From", "Heredoc", "Instruction", "Label", "Run",
    "Shell", "Stage", "StageScope", "User", "Workdir", "chomp", "expand", "global_arg_values",
    "parse_file", "parse_string",
]
