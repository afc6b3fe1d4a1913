# The two commands of the quick start. Both create .venv on first use and reuse it after.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
WORK ?= build/demo

.PHONY: demo test env clean-env

env: $(STAMP)

# lava-nc/lava-dl declare Python <3.11; everything is pinned by constraints.txt, and
# snn2hw.exporters.lava.compat fixes the one 3.11 incompatibility at import time.
$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python -c constraints.txt \
		torch==2.13.0 lava-nc==0.10.0 onnxscript pytest hypothesis
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python --no-deps \
		-c constraints.txt lava-dl==0.6.0
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python -c constraints.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --workdir $(WORK)

test: $(STAMP)
	$(PY) -m pytest

clean-env:
	rm -rf $(VENV)
