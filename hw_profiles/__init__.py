"""Hardware profiles (TOML files in this package), read by :mod:`snn2hw.hardware.profiles`."""
