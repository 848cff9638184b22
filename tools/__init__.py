"""Development tools, outside `make test`: mutation testing (`make mutation`, MUTATION.md; its equivalent mutants in
tools/equivalents/) and the emulator's assumptions list (`python -m tools.assumptions`). Imports mutmut and the
project's own modules, never the other way round."""
