# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: demo test test-avx2 bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,mnist]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genlab train vae   --data mnist_small --preset demo_vae   --out $(DEMO)/vae
	$(VENV)/bin/genlab train dcgan --data mnist_small --preset demo_dcgan --out $(DEMO)/dcgan
	@echo
	@echo "VAE samples:   $(DEMO)/vae/samples/ (newest: $$(ls -v $(DEMO)/vae/samples | tail -n 1))"
	@echo "DCGAN samples: $(DEMO)/dcgan/samples/ (newest: $$(ls -v $(DEMO)/dcgan/samples | tail -n 1))"

test: $(STAMP)
	$(PY) -m pytest -q

# The suite again with torch held to AVX2 kernels, as on a CPU without native bf16 (there
# bf16 runs 30-60x slower than fp32): what must never hang or assume the fast case. Run once,
# in `make test`: the multi-process tests (gloo, no CPU-specific kernels of their own), the
# labs (fp32 experiments over code the rest covers) and the file and process handling
# (downloads over loopback HTTP, file formats, signals, locks, damaged checkpoints).
AVX2_ONCE := tests/training/test_distributed.py tests/unit/test_labs.py tests/unit/test_download.py \
	tests/unit/test_cifar10.py tests/unit/test_imagefolder_crop.py tests/unit/test_bench_data.py \
	tests/training/test_preemption.py tests/training/test_damaged_checkpoint.py
test-avx2: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -m 'not slow and not browser and not docs' $(addprefix --deselect ,$(AVX2_ONCE))

bench: $(STAMP)
	$(VENV)/bin/genlab bench --models vae,dcgan
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) runs .pytest_cache
