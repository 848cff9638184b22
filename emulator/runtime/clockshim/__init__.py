"""The folder put first on a served process's PYTHONPATH, so that Python runs its sitecustomize.py at start-up."""
