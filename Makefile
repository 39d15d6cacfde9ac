# The two commands a newcomer needs (see README.md). Both set up what they need first.
.PHONY: setup demo test bench

setup:
	@bash scripts/setup

demo: setup
	@.venv/bin/python -m bot demo

test: setup
	@.venv/bin/python -m pytest -q

bench: setup
	@.venv/bin/python bench/run_all.py
