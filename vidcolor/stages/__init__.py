"""Built-in stages. Importing this package registers them in ``STAGES``."""

from vidcolor.stages.base import STAGES, Chunk, Stage, StageContext, build_stage, register_stage
from vidcolor.stages import grade  # noqa: F401  (registers "grade")
from vidcolor.stages import stabilize  # noqa: F401  (registers "stabilize")
from vidcolor.stages import colorize  # noqa: F401  (registers "colorize")
from vidcolor.stages import stylize  # noqa: F401  (registers "stylize")
from vidcolor.stages import restore  # noqa: F401  (registers "restore", "deflicker", "degrain", "dust")
from vidcolor.stages import upscale  # noqa: F401  (registers "upscale")
from vidcolor.stages import restore_net  # noqa: F401  (registers "restore_net")

__all__ = ["STAGES", "Chunk", "Stage", "StageContext", "build_stage", "register_stage"]
