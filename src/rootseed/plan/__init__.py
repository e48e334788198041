"""The one planner: (Containerfile, build args, platform, target) → a typed :class:`Plan`.

Every consumer — the builder, the tree's dependency scan, ``check``, ``challenge``,
``crosscheck`` — reads plans made here; nothing else expands a Containerfile variable.
The rules are BuildKit's (``frontend/dockerfile/dockerfile2llb/convert.go``); see
:mod:`rootseed.plan.planner` for each one and where BuildKit implements it.
"""

from rootseed.plan.model import (
    Base,
    ContextPath,
    CopySource,
    FetchPath,
    ImagePath,
    ImageRef,
    ImageSettings,
    InlineFile,
    Plan,
    Planned,
    PlannedArg,
    PlannedCmd,
    PlannedCopy,
    PlannedEntrypoint,
    PlannedEnv,
    PlannedLabel,
    PlannedRun,
    PlannedShell,
    PlannedUser,
    PlannedWorkdir,
    Platform,
    Scratch,
    StagePath,
    StagePlan,
    StageRef,
    to_json,
)
from rootseed.plan.planner import (
    DEFAULT_PLATFORM,
    PlanError,
    image_references,
    package_platform,
    parse_platform,
    plan,
    plan_package,
)

__all__ = [
    "DEFAULT_PLATFORM", "Base", "ContextPath", "CopySource", "FetchPath", "ImagePath",
    "ImageRef", "ImageSettings", "InlineFile", "Plan", "PlanError", "Planned", "PlannedArg",
    "PlannedCmd", "PlannedCopy", "PlannedEntrypoint", "PlannedEnv", "PlannedLabel",
    "PlannedRun", "PlannedShell", "PlannedUser", "PlannedWorkdir", "Platform", "Scratch",
    "StagePath", "StagePlan", "StageRef", "image_references", "package_platform",
    "parse_platform", "plan", "plan_package", "to_json",
]
