"""Verifies one received webhook with the Standard Webhooks reference library (an implementation
independent of ours). Reads JSON from stdin: {"secret", "headers": {...}, "body"}; prints "ok", or
the library's error and exits 1."""
import json
import sys

from standardwebhooks.webhooks import Webhook

request = json.load(sys.stdin)
try:
    Webhook(request["secret"]).verify(request["body"], request["headers"])
except Exception as err:  # the library raises WebhookVerificationError
    print(f"refused: {err}")
    sys.exit(1)
print("ok")
