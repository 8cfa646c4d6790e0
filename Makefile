# Shortcuts; the scripts do the work.

.PHONY: test benchmarks dev

# Everything CI runs.
test:
	scripts/test

# Regenerates BENCHMARKS.md (about 15 minutes; use an idle machine).
benchmarks:
	scripts/benchmarks

# A local three-zone cluster on ports 6379, 6389, 6399.
dev:
	scripts/dev
