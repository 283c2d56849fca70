from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.deliver.webhook import sign

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-tests!!").decode()


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    body = b'{"hello":"world"}'
    timestamp = int(time.time())
    headers = {"webhook-id": "msg_abc", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(SECRET, "msg_abc", timestamp, body)}
    verifier = Webhook(SECRET)
    assert verifier.verify(body, headers) == {"hello": "world"}


def test_tampered_body_fails_verification() -> None:
    timestamp = int(time.time())
    headers = {"webhook-id": "msg_abc", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(SECRET, "msg_abc", timestamp, b'{"a":1}')}
    verifier = Webhook(SECRET)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(b'{"a":2}', headers)
