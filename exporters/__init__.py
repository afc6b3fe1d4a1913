"""The backends of snn2hw, one package each (today: :mod:`.lava`). Installed as
``snn2hw.exporters`` (see pyproject.toml); the core reaches them only through the registry
in :mod:`snn2hw.backends`. Nothing here runs on import."""
