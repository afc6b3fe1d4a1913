"""Lava processes of snn2hw's own. Lava's compiler imports every module of the folder that
defines a process while it looks for process models, so this package holds nothing else
and its modules do nothing on import beyond defining classes."""
