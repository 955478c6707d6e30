# The product brief's example, unchanged but for where the gateway and key come from.
import os

import requests

LEDGER_URL = os.environ.get("LEDGER_URL", "https://ledger.internal:8443")
API_KEY = os.environ["API_KEY"]
NAMESPACE = os.environ.get("NAMESPACE", "staging")

# Submit a governed scale action
resp = requests.post(
    f"{LEDGER_URL}/api/v1/actions",
    headers={"Authorization": f"Bearer {API_KEY}"},
    json={
        "action_type": "SCALE",
        "namespace": NAMESPACE,
        "resource_kind": "Deployment",
        "resource_name": "web-api",
        "parameters": {"replicas": 5},
        "justification": "Scale up for load test"
    }
)

result = resp.json()
print(f"Status: {result['status']}")
print(f"Ledger ID: {result['ledger_entry_id']}")
print(f"Event Hash: {result['event_hash']}")
print(f"Chain Hash: {result['chain_hash']}")
print(f"Signature Verified: {result['signature_verified']}")
