"""Errors that reach the user as one sentence.

Every failure a user can cause (bad config, bad artifact, API refusal) is an ``NmrError``:
the CLI prints ``str(error)`` and exits 1, with a traceback only under ``--debug``.
"""

from __future__ import annotations


class NmrError(Exception):
    """A user-facing failure; ``str(self)`` is the whole message."""

    exit_code = 1


class NotSupportedYet(NmrError):
    """A feature nmr does not implement yet. The message names exactly what."""

    def __init__(self, what: str):
        super().__init__(f"not supported yet: {what}")
        self.what = what


class ArtifactError(NmrError):
    """A model artifact that cannot be read (corrupt, wrong format, unknown field)."""
