"""nmr commands of this stage (filled in by its owner)."""

from builder.cli.app import app  # noqa: F401
