"""The vendored descriptions (tests/contract/specs/SOURCES.md): present, recorded, and Sent's reconstruction
current with the installed client."""

from __future__ import annotations

import json

import sent_dm
import yaml

from tests.contract.provider_specs import FILES, SPECS
from tests.contract.specs.sent.build import OUT, build


def test_sents_reconstruction_is_what_the_installed_client_gives() -> None:
    """After upgrading sentdm: `.venv/bin/python -m tests.contract.specs.sent.build`, then review the diff."""
    committed = json.loads(OUT.read_text())
    assert committed["info"]["version"] == sent_dm.__version__, "sentdm changed: rebuild the reconstruction"
    assert committed == build()


def test_sendgrids_description_is_the_published_one() -> None:
    doc = yaml.safe_load(FILES["sendgrid"].read_text())
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Twilio SendGrid Mail API"
    assert "/v3/mail/send" in doc["paths"]
    assert (SPECS / "sendgrid" / "LICENSE").read_text().startswith("MIT License")


def test_every_vendored_file_is_recorded_with_origin_and_licence() -> None:
    sources = (SPECS / "SOURCES.md").read_text()
    for file in FILES.values():
        assert f"`{file.relative_to(SPECS)}`" in sources
    assert "twilio/sendgrid-oai" in sources and "MIT" in sources and "Apache-2.0" in sources
