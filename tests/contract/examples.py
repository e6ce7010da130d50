"""Valid request bodies for every route a pack answers in test mode, covering each of its answers (statuses).

tests/contract/test_contract.py renders the gateway's answer to each and checks it against the policy's own
contract and against the provider's description; a route with a test answer but no example here fails there.
"""

from __future__ import annotations

from typing import Any

_MAIL: dict[str, Any] = {
    "personalizations": [{"to": [{"email": "to@example.com"}]}],
    "from": {"email": "from@example.com"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "Hello"}],
}
_BRAND = {"business": {"legal_name": "Shop Inc"}, "contact": {"email": "owner@example.com"}, "compliance": {}}

EXAMPLES: dict[str, dict[str, list[dict[str, Any]]]] = {
    "sendgrid": {
        "mail.send": [{**_MAIL, "mail_settings": {"sandbox_mode": {"enable": True}}}, _MAIL],
    },
    "sent": {
        "messages.send": [
            {"phone_number": "+1234567890", "template_id": "welcome-template", "variables": {"name": "Test"}},
            {"to": ["+15555550100", "+15555550101"], "text": "hi", "channel": ["sms"]},
            {"to": ["+15555550100"], "template": {"id": "t-1", "name": "welcome", "parameters": {}}},
        ],
        "contacts.create": [{"phone_number": "+15555550100"}],
        "contacts.update": [{"opt_out": True}, {"default_channel": None}],
        "contacts.delete": [{}],
        "templates.create": [{"category": "UTILITY", "language": "en_US", "definition": {}}, {}],
        "templates.update": [{"name": "renamed"}],
        "templates.delete": [{}],
        "webhooks.create": [{"endpoint_url": "https://example.com/h", "event_types": ["message.sent"]}],
        "webhooks.update": [{}, {"display_name": "d", "retry_count": 5}],
        "webhooks.delete": [{}],
        "webhooks.rotate_secret": [{}],
        "webhooks.test": [{"event_type": "message.sent"}],
        "webhooks.toggle_status": [{"is_active": True}, {}],
        "profiles.create": [{"name": "Shop"}, {"name": "Shop", "brand": _BRAND, "inherit_contacts": None}],
        "profiles.update": [{}, {"short_name": "S"}],
        "profiles.delete": [{}],
        "profiles.complete": [{"webHookUrl": "https://example.com/done"}],
        "profiles.campaigns.create": [{"campaign": {"name": "c", "description": "d"}}],
        "profiles.campaigns.update": [{"campaign": {}}],
        "profiles.campaigns.delete": [{}],
        "brands.create": [_BRAND],
        "users.invite": [{"email": "a@example.com"}, {"email": "b@example.com", "name": "B", "role": "admin"}],
        "users.update_role": [{"role": "viewer"}],
        "users.remove": [{}],
        "me.retrieve": [{}],
    },
}
