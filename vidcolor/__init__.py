"""vidcolor: colorize and stylize video with GAN generators, streaming and temporally stable."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vidcolor")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
