"""Execution backends for quantised networks (Lava). Nothing here runs on import."""
