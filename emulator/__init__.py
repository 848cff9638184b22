"""A local Google Cloud for rehearsing how a Gemini workload fails: `python -m emulator --scenario NAME`.

The real client libraries and the real `gcloud` talk to it over the real wire protocols (gRPC with
`grpc-status-details-bin`, REST with the google.rpc.Status JSON body) and raise their real errors.
"""
