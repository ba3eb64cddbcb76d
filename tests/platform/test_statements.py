"""A data set's description, licence and consent statement: checked at registration,
published in the manifest (and so verified), shown, and kept by a re-encrypted version."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import rfc8785

from tests.factories import make_settings
from veilchain.errors import InputError, InvalidTextError
from veilchain.platform.manifest import ImageRecord, Manifest
from veilchain.platform.statements import LIMITS, DatasetStatements
from veilchain.platform.wiring import build_service

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "example" / "manifest.json"
CONSENT = "Every person shown signed the consent form of 2026-11-02.\nWithdrawal: privacy@x.org"


# --- the rules ---------------------------------------------------------------------------
def test_text_is_trimmed_line_ends_unified_and_empty_is_not_given():
    s = DatasetStatements.checked(
        description="  Staff portraits\r\nsecond line\r ", licence=" CC-BY-4.0 ", consent="  "
    )
    assert s == DatasetStatements("Staff portraits\nsecond line", "CC-BY-4.0", None)
    assert DatasetStatements.checked() == DatasetStatements(None, None, None)
    assert DatasetStatements.checked(description="tab\tand ünïcödé 顔").description


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"description": "bell \x07"}, r"description holds the control character U\+0007 at"),
        ({"consent": "nul \x00 byte"}, r"consent statement holds the control character U\+0000"),
        ({"licence": "MIT\nplus"}, "the licence must be one line"),
        ({"licence": "MIT\tplus"}, r"licence holds the control character U\+0009"),
        ({"description": "abc\u202eevil"}, r"U\+202E"),  # a bidi override ("Trojan Source")
        ({"description": "\x9bC1 control"}, r"U\+009B"),
        ({"description": 5}, "the description must be text, not int"),
        ({"licence": "x" * 201}, "the licence is 201 characters long; at most 200 are allowed"),
        ({"consent": "y" * (LIMITS["consent"][1] + 1)}, "at most 8000"),
    ],
)
def test_bad_text_is_refused_in_one_line(given, message):
    with pytest.raises(InvalidTextError, match=message) as err:
        DatasetStatements.checked(**given)
    assert "\n" not in str(err.value) and isinstance(err.value, InputError)


def test_the_limits_are_reachable():
    full = {k: "z" * limit for k, (_label, limit, _multi) in LIMITS.items()}
    assert DatasetStatements.checked(**full).to_dict() == full


# --- the manifest --------------------------------------------------------------------------
def _manifest(statements: DatasetStatements | None) -> Manifest:
    rec = ImageRecord(0, "000000", "bafk", "00" * 32, "11" * 32, 1, 2, 3, {"s": 0.25})
    return Manifest(
        "ab" * 16, "n", "0x" + "1" * 40, 1337, "0x" + "2" * 40, "blur", "0x" + "3" * 64,
        {"seed": 0}, "0x" + rec.leaf().hex(), [rec], [[]], statements=statements,
    )  # fmt: skip


def test_manifest_round_trips_the_statements_and_writes_null_for_not_given():
    given = DatasetStatements("Staff portraits", "CC-BY-4.0", None)
    data = _manifest(given).to_bytes()
    dataset = json.loads(data)["dataset"]
    assert (dataset["description"], dataset["licence"], dataset["consent"]) == (
        "Staff portraits", "CC-BY-4.0", None,
    )  # fmt: skip
    back = Manifest.from_bytes(data)
    assert back.statements == given and back.to_bytes() == data
    streamed = io.BytesIO()  # as a registration pins it: one record at a time
    m = _manifest(given)
    Manifest(**{**m.__dict__, "records": [], "proofs": []}).write_streaming(
        streamed, 1, zip(m.records, m.proofs, strict=True)
    )
    assert streamed.getvalue() == data


def test_a_manifest_written_before_statements_still_parses_and_round_trips():
    data = EXAMPLE.read_bytes()
    assert b'"description"' not in data
    m = Manifest.from_bytes(data)
    assert m.statements is None and m.to_bytes() == data


@pytest.mark.parametrize(
    ("dataset", "problem"),
    [
        ({"description": 42, "licence": None, "consent": None}, "dataset.description must be"),
        ({"description": None, "licence": ["MIT"], "consent": None}, "dataset.licence must be"),
        ({"description": None, "licence": None, "consent": True}, "dataset.consent must be"),
        ({"consent": "yes"}, "dataset.description must be a string or null"),  # all or none
    ],
)
def test_a_wrong_typed_statement_is_refused_at_c4(dataset, problem):
    d = json.loads(_manifest(None).to_bytes())
    d["dataset"].update(dataset)
    with pytest.raises(InputError, match=f"not valid veilchain-manifest/2 JSON: {problem}"):
        Manifest.from_bytes(rfc8785.dumps(d))


# --- registration end to end (embedded chain) ---------------------------------------------
@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    return build_service(make_settings(tmp_path_factory.mktemp("statements")))


@pytest.fixture(scope="module")
def registered(svc, sample_inputs):
    return svc.register(
        [sample_inputs], name="staff", method="blur", allow_recognizable=True,
        description="Staff portraits", licence="CC-BY-4.0", consent=CONSENT,
    )  # fmt: skip


def test_registration_publishes_verifies_and_shows_the_statements(svc, registered):
    m = svc.manifest(registered.dataset_id)
    assert m.statements == DatasetStatements("Staff portraits", "CC-BY-4.0", CONSENT)
    assert svc.verify(registered.dataset_id).ok
    summary = svc.get_dataset(registered.dataset_id)
    assert summary.statements.consent == CONSENT


def test_a_reencrypted_version_keeps_the_statements(svc, registered):
    new = svc.add_reencrypted_version(registered.dataset_id)
    assert new.version == registered.version + 1
    m = svc.manifest(registered.dataset_id, new.version)
    assert m.statements == svc.manifest(registered.dataset_id, registered.version).statements
    assert m.previous_manifest_cid == registered.manifest_cid
    assert svc.verify(registered.dataset_id, new.version).ok


def test_none_given_is_published_as_null(svc, sample_inputs):
    r = svc.register([sample_inputs], name="plain", method="blur", allow_recognizable=True)
    raw = json.loads(svc.storage.cat(r.manifest_cid))["dataset"]
    assert {k: raw[k] for k in ("description", "licence", "consent")} == dict.fromkeys(
        ("description", "licence", "consent")
    )
    assert svc.verify(r.dataset_id).ok


def test_bad_text_is_refused_before_any_work(svc, sample_inputs):
    before = svc.chain.dataset_count()
    with pytest.raises(InvalidTextError, match="one line"):
        svc.register([sample_inputs], name="x", method="blur", licence="MIT\nand more")
    assert svc.chain.dataset_count() == before and not svc.pending_registrations()
