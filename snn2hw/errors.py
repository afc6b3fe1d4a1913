"""User-facing errors. Each keeps its facts as fields; the CLI prints one line per error.

Exit codes (documented in the README):
  2  bad input (model, data, artifact, profile, option)
  3  a hardware limit that does not fit
  4  a backend (Lava) failure or timeout
  130 interrupted (Ctrl-C)
Anything else that escapes is an internal bug and shows a traceback (exit 1).
"""
from __future__ import annotations

from dataclasses import dataclass


class Snn2hwError(Exception):
    """Base of every error meant for the user."""

    exit_code = 2
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, **facts: object) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.facts = facts


class InputError(Snn2hwError):
    """A file or option given by the user is not usable."""


class ModelFileError(InputError):
    """The ONNX file cannot be read or is not a valid model."""


class DataError(InputError):
    """A data set is missing, malformed or does not fit the model."""


class ArtifactError(InputError):
    """A calibration or export artifact is unreadable, outdated or for another model."""


class ProfileError(InputError):
    """A hardware profile is unknown or has a missing or out-of-range field."""


class HardwareLimitError(Snn2hwError):
    """A quantity does not fit the target's limits."""

    exit_code = 3


class BackendError(Snn2hwError):
    """The execution backend (Lava) failed or timed out."""

    exit_code = 4


class Interrupted(Snn2hwError):
    exit_code = 130


@dataclass(frozen=True)
class UnsupportedNode:
    name: str
    op_type: str
    opset: int
    reason: str
    hint: str

    def describe(self) -> str:
        return f"{self.name or '<unnamed>'} ({self.op_type}, opset {self.opset}): {self.reason}"


class UnsupportedModelError(InputError):
    """Raised once, before conversion, listing every node the importer cannot convert."""

    def __init__(self, nodes: list[UnsupportedNode]) -> None:
        self.nodes = list(nodes)
        listed = "; ".join(n.describe() for n in self.nodes)
        hints = sorted({n.hint for n in self.nodes if n.hint})
        super().__init__(
            f"{len(self.nodes)} unsupported node(s): {listed}",
            hint=" ".join(hints) or None,
            nodes=self.nodes,
        )
