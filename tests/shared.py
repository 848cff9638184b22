"""Names every test world shares: the shipped scenarios' project, region and the workload's service account (the
identity the canary runs as). One place, so that a test reads `WORKLOAD`, not an e-mail typed again."""

PROJECT = "demo-proj"
REGION = "us-central1"
WORKLOAD = f"canary-workload@{PROJECT}.iam.gserviceaccount.com"
WORKLOAD_MEMBER = f"serviceAccount:{WORKLOAD}"
