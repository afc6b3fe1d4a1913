"""Custom hardware profiles for tests: a shipped profile with some fields changed, written
as a TOML file."""
from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path


def shipped(name: str) -> dict:
    return tomllib.loads(resources.files("snn2hw.hw_profiles").joinpath(f"{name}.toml")
                         .read_text())


def _toml_value(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_profile(path: Path, changes: dict, base: str = "loihi_sim") -> Path:
    """``base`` with dotted-key ``changes`` (None deletes), written as TOML."""
    doc = shipped(base)
    doc["name"] = path.stem
    for dotted, value in changes.items():
        *tables, key = dotted.split(".")
        node = doc
        for table in tables:
            node = node.setdefault(table, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for table, body in doc.items():
        if isinstance(body, dict):
            lines += [f"\n[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
