"""What every emulated API shares and no single API owns: the world (projects, principals, the clock, the log),
IAM (roles, allow and deny policies, the one permission check), Cloud Audit Logs entries, admin changes, scenarios
(validate, apply, export: the admin API uses them, never re-implements them), the handler contract every service
declares itself with, and google.rpc.Status building. Imports nothing of `emulator` outside `emulator.core`."""
