"""Which peer converters are installed, and the exact command that installs a missing one.

The peers are optional (``make peers``; pinned in ``benchmarks/peers-constraints.txt``):
snn2hw and ``make test`` never need them. SpikingJelly goes in with ``--no-deps`` because
its declared dependencies would replace the CPU torch with a CUDA build.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

CONSTRAINTS = "benchmarks/peers-constraints.txt"
PIP = ".venv/bin/python -m pip install -c constraints.txt -c " + CONSTRAINTS


@dataclass(frozen=True)
class Peer:
    name: str          # distribution and import name
    version: str       # the pinned version the benchmark was written against
    commands: tuple[str, ...]


PEERS = {
    "spikingjelly": Peer("spikingjelly", "2.0.0", (
        f"{PIP} --no-deps spikingjelly", f"{PIP} tqdm loguru requests")),
    "sinabs": Peer("sinabs", "2.0.3", (f"{PIP} sinabs",)),
}


def install_hint(name: str) -> str:
    """One line: ``make peers``, or the pip commands for this peer alone."""
    return "make peers (or: " + " && ".join(PEERS[name].commands) + ")"


def missing(name: str, find=importlib.util.find_spec, version=importlib.metadata.version
            ) -> str | None:
    """None when ``name`` can be imported, else why not and how to install it."""
    peer = PEERS[name]
    if find(peer.name) is None:
        return f"{peer.name} is not installed; install it with: {install_hint(name)}"
    return None


def version_note(name: str, version=importlib.metadata.version) -> str:
    """The installed version, flagged when it is not the pinned one."""
    peer = PEERS[name]
    try:
        found = version(peer.name)
    except importlib.metadata.PackageNotFoundError:
        return "version unknown"
    return found if found == peer.version else f"{found} (benchmark pinned {peer.version})"
