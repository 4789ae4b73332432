.PHONY: install test lint
install:
	bash scripts/install.sh
test:
	.venv/bin/python -m pytest -q
lint:
	.venv/bin/ruff check src tests benchmarks
