# The two commands a newcomer needs (see README.md). Both set up what they need first.
.PHONY: setup demo test bench

# `make demo DEMO_ARGS="--days 1 --seconds 20"` plays a shorter campaign.
DEMO_ARGS ?=

setup:
	@bash scripts/setup

demo: setup
	@.venv/bin/python -m sandboxes.demo $(DEMO_ARGS)

test: setup
	@.venv/bin/python -m pytest -q

bench: setup
	@.venv/bin/python bench/run_all.py
