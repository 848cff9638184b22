"""The canary's local tooling around the emulator: the one functions-framework launcher (tests, benchmarks, the
demo), clients and tokens as any principal (`emulated`), fleet fixtures for the deploy tool (`fleet`) and the demo
(`python -m devkit.demo`, `make run`). May import `emulator` and the Google client libraries; `function/` and
`deploy/` never import it."""
