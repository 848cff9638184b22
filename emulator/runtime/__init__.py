"""What runs deployed code (serving.py): each gen2 function's revision from its uploaded source, served by the real
functions-framework in a process of its own as its runtime service account (process.py), its output written to
Cloud Logging as Cloud Run writes it (logs.py), behind Cloud Run's ingress (ingress.py). On only when the emulator is
asked to serve functions (`Emulator(serve_functions=True)`, `python -m emulator`)."""
