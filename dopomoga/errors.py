"""The errors the core raises at its boundary, each with a stable reason code.

A service turns them into a dead-letter record (``Rejected.reason_code``), the CLI into a
per-line error, the gateway into a 4xx answer. (``ProgramError`` and ``ParameterError`` are
load-time errors of the rule files and live beside their loaders.)
"""

from __future__ import annotations


class ReasonError(ValueError):
    """A refusal to process an input, with a machine-readable reason code."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


class ApplicationError(ReasonError):
    """The application cannot be decided as submitted (dead-letter / per-line error)."""


class LedgerError(ReasonError):
    """A budget input the ledger cannot apply (dead-letter with the reason)."""
