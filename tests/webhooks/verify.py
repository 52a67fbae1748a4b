"""Checks webhook deliveries with libraries that share no code with Amtsweg.

- Standard Webhooks: the official `standardwebhooks` library (signature and timestamp tolerance).
- FIT-Connect callbacks: HMAC-SHA512 over "{callback-timestamp}.{body}" with Python's hmac module.
- The event's detached JWS: `jwcrypto` against the published seal keys, over the RFC 8785 form made by `rfc8785`.

Usage: python3 verify.py case.json  (written by tests/tests/integration.rs)
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import rfc8785
from jwcrypto import jwk, jws
from standardwebhooks.webhooks import Webhook


def verify_jws(event, keys):
    token = event.pop("jws")
    payload = rfc8785.dumps(event)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    key = next(k for k in keys["keys"] if k["kid"] == header["kid"])
    public = jwk.JWK(kty="OKP", crv="Ed25519", x=key["x"])
    signed = jws.JWS()
    signed.deserialize(token)
    signed.verify(public, alg="EdDSA", detached_payload=payload)


def main():
    case = json.load(open(sys.argv[1]))
    verified_jws = 0

    webhook = Webhook(case["standard"]["secret"])
    count = 0
    for delivery in case["standard"]["deliveries"]:
        event = webhook.verify(delivery["body"], delivery["headers"])
        assert event["specversion"] == "1.0", event
        verify_jws(json.loads(delivery["body"]), case["keys"])
        count += 1
        verified_jws += 1
    print(f"standard webhooks: {count} verified")

    secret = case["fit"]["secret"].encode()
    count = 0
    for delivery in case["fit"]["deliveries"]:
        headers = delivery["headers"]
        timestamp = headers["callback-timestamp"]
        assert abs(int(timestamp) - time.time()) < 300, "stale timestamp"
        expected = hmac.new(secret, f"{timestamp}.{delivery['body']}".encode(), hashlib.sha512).hexdigest()
        assert hmac.compare_digest(expected, headers["callback-authentication"]), "bad FIT-Connect signature"
        verify_jws(json.loads(delivery["body"]), case["keys"])
        count += 1
        verified_jws += 1
    print(f"fit-connect: {count} verified")
    print(f"jws: {verified_jws} verified")


if __name__ == "__main__":
    main()
