"""Benchmarks (`make bench`, BENCHMARKS.md): the canary against a naive implementation and a floor, served the same way
and measured side by side in one invocation, reported as ratios. May import everything: function/, emulator/,
devkit/."""
