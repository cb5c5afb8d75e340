"""Built-in stages. Importing this package registers them in ``STAGES``."""

from vidcolor.stages.base import STAGES, Chunk, Stage, StageContext, build_stage, register_stage
from vidcolor.stages import grade  # noqa: F401  (registers "grade")

__all__ = ["STAGES", "Chunk", "Stage", "StageContext", "build_stage", "register_stage"]
