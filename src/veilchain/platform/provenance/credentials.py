"""Content Credentials (C2PA) on anonymized images: what is signed, and how it is read back.

Each anonymized PNG gets one C2PA manifest, signed by the institution before the image is
encrypted, so that the manifest is covered by the ciphertext, its CID and the Merkle leaf
(whose ``anonymizedSha256`` is the sha256 of the signed file). It holds two assertions:

- ``c2pa.actions.v2``: one ``c2pa.created`` action with the IPTC digital source type of the
  method and its name, epsilon and model hash as parameters;
- ``org.veilchain.anchor`` (:class:`Anchor`): where the image's record is: chain, contract,
  registration, image index and, when already fixed, the data set id.

Nothing in either is derived from the original image: no ingredient, no thumbnail, no hash
and no file name (the title is the public image id). docs/provenance.md has the details.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from veilchain.errors import ContentCredentialsError, VeilchainError
from veilchain.platform.provenance.identity import SigningIdentity

__all__ = [
    "ANCHOR_FORMAT",
    "ANCHOR_LABEL",
    "Anchor",
    "Credentials",
    "CredentialsSigner",
    "anchor_problems",
    "check_image_credentials",
    "digital_source_type",
    "expected_credentials",
    "read_credentials",
    "sign_file",
]

ANCHOR_LABEL = "org.veilchain.anchor"
ANCHOR_FORMAT = "veilchain-anchor/1"
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# Generators paint new faces with a trained model; region methods edit pixels in place.
_SOURCE_TYPE = {
    "generator": "compositeWithTrainedAlgorithmicMedia",
    "region": "algorithmicallyEnhanced",
}
_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "video/mp4": ".mp4", "video/avi": ".avi"}
MIME_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                  ".mp4": "video/mp4", ".avi": "video/avi"}  # fmt: skip
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_SIGN_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}


def digital_source_type(method: str) -> str:
    """The IPTC digital source type URI of an anonymization method's output."""
    from veilchain.anonymizer.methods import METHODS_BY_NAME

    spec = METHODS_BY_NAME.get(method)
    return _IPTC + _SOURCE_TYPE[spec.kind if spec else "region"]


@dataclass(frozen=True)
class Anchor:
    """The record an image points to. ``registration`` is the data set manifest's
    ``dataset.uid``. ``dataset_id`` only when it is fixed before signing, which no flow does
    today: a new data set's id is assigned by the contract when the registration is mined,
    after its images were signed, and a re-encrypted version keeps its signed images."""

    chain_id: int
    contract: str
    registration: str
    image_index: int
    image_id: str
    dataset_id: int | None = None

    def to_dict(self) -> dict:
        return {"format": ANCHOR_FORMAT, **asdict(self), "chain_id": str(self.chain_id)}


class CredentialsSigner:
    """Signs outputs with one institution's identity; one per process (the C2PA signer and
    context are reused across images)."""

    def __init__(self, identity: SigningIdentity) -> None:
        try:
            import c2pa
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ContentCredentialsError(
                "c2pa-python is not installed; pip install c2pa-python"
            ) from exc
        self.identity = identity
        self._c2pa = c2pa
        try:
            self._context = c2pa.Context(c2pa.Settings.from_dict(_SIGN_SETTINGS))
            info = c2pa.C2paSignerInfo(
                c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, None
            )
            self._signer = c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise ContentCredentialsError(f"the C2PA signer cannot be built: {exc}") from exc

    def definition(
        self,
        *,
        method: str,
        epsilon: float | None,
        model_hash: str,
        anchor: Anchor | None,
        mime: str = "image/png",
        features: list[str] | None = None,
    ) -> dict:
        """The manifest definition for one output: only public facts, nothing from the input.
        ``anchor`` None: an output that is not registered (``veilchain anonymize``);
        ``features``: the face features a generator regenerated (None: the whole face)."""
        from veilchain import __version__

        action = {
            "action": "c2pa.created",
            "digitalSourceType": digital_source_type(method),
            "softwareAgent": {"name": "veilchain", "version": __version__},
            "description": f"faces anonymized with {method}",
            "parameters": {
                "org.veilchain.method": method,
                "org.veilchain.epsilon": _epsilon_text(epsilon),
                "org.veilchain.model_hash": model_hash,
                **({"org.veilchain.features": list(features)} if features else {}),
            },
        }
        assertions = [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}]
        if anchor is not None:
            assertions.append({"label": ANCHOR_LABEL, "data": anchor.to_dict()})
        stem = anchor.image_id if anchor is not None else "anonymized"
        return {
            "claim_generator_info": [{"name": "veilchain", "version": __version__}],
            "title": stem + _SUFFIX.get(mime, ""),
            "format": mime,
            "assertions": assertions,
        }

    def sign(self, data: bytes, definition: dict, mime: str = "image/png") -> bytes:
        """``data`` (PNG, JPEG, MP4 or AVI) with the manifest embedded and signed."""
        c2pa = self._c2pa
        out = io.BytesIO()
        try:
            builder = c2pa.Builder(definition, self._context)
            builder.sign(self._signer, mime, io.BytesIO(data), out)
        except c2pa.C2paError as exc:
            raise ContentCredentialsError(
                f"cannot sign the output's Content Credentials: {exc}"
            ) from exc
        return out.getvalue()

    def sign_png(self, png: bytes, definition: dict) -> bytes:
        return self.sign(png, definition, "image/png")


def sign_file(
    path: Path, signer: CredentialsSigner, *, method: str, epsilon: float | None, model_hash: str
) -> bool:
    """Sign an output file in place (PNG, JPEG, MP4, AVI; ``veilchain anonymize --credentials``:
    an unregistered output, so no anchor). False for a format the signer does not take."""
    mime = MIME_BY_SUFFIX.get(path.suffix.lower())
    if mime is None:
        return False
    definition = signer.definition(
        method=method, epsilon=epsilon, model_hash=model_hash, anchor=None, mime=mime
    )
    signed = signer.sign(path.read_bytes(), definition, mime)
    tmp = path.with_name(f".{path.name}.signing")
    tmp.write_bytes(signed)
    os.replace(tmp, path)
    return True


@dataclass
class Credentials:
    """What a C2PA reader says about one file. ``state`` is the SDK's validation state
    ("Invalid", "Valid": signature and hashes good, "Trusted": also chains to a given CA);
    ``failures`` the codes of failed checks (e.g. ``assertion.dataHash.mismatch``)."""

    present: bool
    state: str | None = None
    signer: str | None = None
    signer_serial: str | None = None
    issuer: str | None = None
    failures: list[str] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    anchor: dict | None = None
    assertion_labels: list[str] = field(default_factory=list)
    ingredients: int = 0
    has_thumbnail: bool = False
    error: str | None = None

    @property
    def method(self) -> str | None:
        params = (self.actions[0].get("parameters") or {}) if self.actions else {}
        return params.get("org.veilchain.method")

    @property
    def epsilon(self) -> str | None:
        params = (self.actions[0].get("parameters") or {}) if self.actions else {}
        return params.get("org.veilchain.epsilon")

    def summary(self, dataset_id: int | None = None, version: int | None = None) -> str:
        """One line for people: "anonymized with ciagan, ε –, by X, anchored in data set 3
        v1"; the data set and version are the chain's (the anchor holds them only when they
        were fixed before signing)."""
        if not self.present:
            return "no Content Credentials"
        eps = self.epsilon if self.epsilon is not None else "–"
        if dataset_id is None and self.anchor:
            dataset_id = self.anchor.get("dataset_id")
        where = "" if dataset_id is None else f", anchored in data set {dataset_id}"
        where += "" if dataset_id is None or version is None else f" v{version}"
        return f"anonymized with {self.method}, ε {eps}, by {self.signer}{where}"

    def to_dict(self, dataset_id: int | None = None, version: int | None = None) -> dict:
        return {**asdict(self), "summary": self.summary(dataset_id, version)}


@lru_cache(maxsize=8)
def _read_context(trust_pem: str | None):
    import c2pa

    settings: dict[str, Any] = dict(_READ_SETTINGS)
    if trust_pem:
        settings["trust"] = {"user_anchors": trust_pem}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def read_credentials(
    data: bytes, *, trust_pem: str | None = None, mime: str = "image/png"
) -> Credentials:
    """Read and validate the C2PA manifest of ``data``; ``trust_pem``: CA certificate(s) to
    trust (without them a good signature is "Valid", never "Trusted")."""
    import c2pa

    try:
        reader = c2pa.Reader.try_create(
            mime, io.BytesIO(data), None, _read_context(trust_pem or None)
        )
    except c2pa.C2paError as exc:
        return Credentials(present=True, state="Invalid", error=f"unreadable manifest: {exc}")
    if reader is None:
        return Credentials(present=False)
    with reader:
        store = json.loads(reader.json())
        cr = json.loads(reader.crjson())
    label = store.get("active_manifest")
    active = store.get("manifests", {}).get(label, {})
    sig = active.get("signature_info") or {}
    cert_info: dict[str, Any] = {}
    for m in cr.get("manifests", []):
        if m.get("label") == label:
            cert_info = (m.get("signature") or {}).get("certificateInfo") or {}
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or {}).get("actions") or []
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    return Credentials(
        present=True,
        state=store.get("validation_state"),
        signer=sig.get("issuer") or sig.get("common_name"),
        signer_serial=cert_info.get("serialNumber"),
        issuer=(cert_info.get("issuer") or {}).get("CN"),
        failures=[f.get("code") for f in results.get("failure", [])],
        actions=actions,
        anchor=assertions.get(ANCHOR_LABEL),
        assertion_labels=sorted(a for a in assertions if a),
        ingredients=len(active.get("ingredients") or []),
        has_thumbnail=bool(active.get("thumbnail")),
    )


def anchor_problems(
    creds: Credentials,
    *,
    chain_id: int,
    contract: str,
    registration: str,
    dataset_id: int,
    image_index: int,
    signer_serial: str | None = None,
    trusted: bool = True,
) -> list[str]:
    """Why ``creds`` are not the credentials of record ``image_index`` of the data set
    version whose manifest has ``dataset.uid == registration``; empty when they are.
    ``signer_serial``: the signing certificate the data set publishes; ``trusted``: the CA
    it publishes was given to the reader."""
    if not creds.present:
        return ["the image carries no Content Credentials"]
    problems = []
    if creds.error:
        problems.append(creds.error)
    wanted = "Trusted" if trusted else "Valid"
    if creds.state != wanted and not (wanted == "Valid" and creds.state == "Trusted"):
        codes = ", ".join(c for c in creds.failures if c) or "no reason given"
        problems.append(f"Content Credentials are {creds.state or 'unreadable'} ({codes})")
    if signer_serial and (creds.signer_serial or "").lower() != signer_serial.lower():
        problems.append(
            f"signed by certificate {creds.signer_serial}, the data set names {signer_serial}"
        )
    a = creds.anchor
    if not isinstance(a, dict):
        return [*problems, f"the credentials hold no {ANCHOR_LABEL} assertion"]
    expected = {
        "chain_id": str(chain_id),
        "registration": registration,
        "image_index": image_index,
    }
    for key, value in expected.items():
        if a.get(key) != value:
            problems.append(f"anchor {key} {a.get(key)!r} is not {value!r}")
    if str(a.get("contract", "")).lower() != contract.lower():
        problems.append(f"anchor contract {a.get('contract')} is not {contract}")
    if a.get("dataset_id") not in (None, dataset_id):
        problems.append(f"anchor dataset_id {a.get('dataset_id')} is not {dataset_id}")
    return problems


def check_image_credentials(
    data: bytes,
    manifest,
    *,
    index: int,
    dataset_id: int,
    manifest_at: Callable[[str], Any] | None = None,
) -> tuple[Credentials, list[str]]:
    """Read the credentials of a decrypted image of ``manifest`` (a data set version) and
    say why they are not those of its record ``index``: signed by the certificate the
    manifest names, trusted under the CA it publishes, anchored to its registration.

    A re-encrypted version keeps its images byte for byte, so their anchor names the
    registration they were first signed in: ``manifest_at(cid)`` loads earlier manifests
    along ``previous_manifest_cid`` to find it. A manifest without a ``credentials``
    section (registered before images were signed) has nothing to compare with: the
    credentials are read and no problem is raised."""
    creds = read_credentials(data)
    if manifest_at is not None:
        try:
            manifest = _registration_manifest(
                manifest, (creds.anchor or {}).get("registration"), manifest_at
            )
        except VeilchainError as exc:
            return creds, [f"the image's registration cannot be found: {exc}"]
    published = manifest.credentials
    if not published:
        return creds, []
    creds = read_credentials(data, trust_pem=published["ca_certificate"])
    problems = anchor_problems(
        creds,
        chain_id=manifest.chain_id,
        contract=manifest.contract,
        registration=manifest.dataset_uid,
        dataset_id=dataset_id,
        image_index=index,
        signer_serial=published["signer_serial"],
    )
    return creds, problems


def _registration_manifest(manifest, registration, manifest_at):
    """The manifest along ``previous_manifest_cid`` whose ``dataset.uid`` is
    ``registration`` (a re-encrypted version's images were signed for an earlier one)."""
    seen = 0
    while registration != manifest.dataset_uid and manifest.previous_manifest_cid and seen < 64:
        manifest, seen = manifest_at(manifest.previous_manifest_cid), seen + 1
    return manifest


def expected_credentials(
    manifest, *, dataset_id: int, version: int, index: int, manifest_at: Callable[[str], Any]
) -> dict | None:
    """What the Content Credentials of record ``index`` of a version carry, from the public
    manifests alone (the image itself is encrypted); None for a version registered before
    images were signed. ``verify --images`` and ``fetch`` read the same from the image."""
    first = manifest
    while first.previous_manifest_cid:  # images keep the credentials of their first version
        first = manifest_at(first.previous_manifest_cid)
    published = first.credentials
    if not published:
        return None
    epsilon = (first.params or {}).get("epsilon")
    anchor = Anchor(
        chain_id=first.chain_id,
        contract=first.contract,
        registration=first.dataset_uid,
        image_index=index,
        image_id=first.records[index].image_id,
    )
    creds = Credentials(
        present=True,
        signer=published["institution"],
        actions=[{"parameters": {"org.veilchain.method": first.method,
                                 "org.veilchain.epsilon": _epsilon_text(epsilon)}}],
    )  # fmt: skip
    return {
        "summary": creds.summary(dataset_id, version),
        "signer": published["institution"],
        "signer_serial": published["signer_serial"],
        "ca_sha256": published["ca_sha256"],
        "digital_source_type": digital_source_type(first.method),
        "method": first.method,
        "epsilon": _epsilon_text(epsilon),
        "model_hash": first.model_hash,
        "anchor": anchor.to_dict(),
    }


def _epsilon_text(epsilon: float | None) -> str | None:
    """ε as the credentials write it: Python's shortest round-trip text, or None."""
    return None if epsilon is None else repr(float(epsilon))
