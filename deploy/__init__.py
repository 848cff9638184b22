"""The deploy tool (`python -m deploy`): rolls the canary out to a fleet of projects with gcloud and the Cloud
Monitoring client library, idempotently, with the least privilege; the alert policies and the dashboard it installs.
Imports function/'s vocabulary (causes, the metrics schema, roles, config), never emulator/, devkit/ or tests."""
