"""The wire: the gRPC server, the REST front end (Google's URL templates and proto3-JSON transcoding), the metadata
server, the admin API, and the HTTP server they run on. A front end turns bytes into a handler call and the outcome
back; it knows no single API (the registry in `emulator.services` tells it what to serve). Imports `emulator.core`
and the registry, never a service module."""
