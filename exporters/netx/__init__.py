"""The lava-dl netx writer (``snn2hw export --format netx``): the quantised network as a
netx ``.net`` file (:mod:`.write`; what it refuses: :mod:`.checks`). Registered in
:func:`snn2hw.backends._register_shipped`. Writing needs only h5py; lava-dl is needed to
*read* the file (tests/test_netx_export.py does, in a child process)."""
from __future__ import annotations


class NetxWriter:
    name = "netx"
    suffix = ".net"
    needs = "integer"        # a quantised export (snn2hw.artifacts.export.ExportArtifact)

    def constrain(self, profile):
        from .checks import constrain

        return constrain(profile)

    def write(self, path, network, options: dict) -> list[str]:
        from .write import write_netx

        return write_netx(path, network, options)


WRITER = NetxWriter()

__all__ = ["WRITER"]
