#!/usr/bin/env python3
"""Check the Content Credentials of image files the way any outside tool would.

This script uses the C2PA SDK's Python bindings (``c2pa-python``) and the standard library
only: it imports nothing from Veilchain, so it checks Veilchain's signing independently of
Veilchain's own reader. For every file it prints one JSON object per line:

    {"file": ..., "manifest": true, "state": "Trusted", "failures": [], "signer": ...,
     "created": true, "digital_source_type": ..., "anchor": {...}, "problems": []}

    python verifiers/c2pa/read_credentials.py [--trust CA.pem] [--expect-anchor] FILE...

``--trust`` gives the CA certificate(s) (PEM) to trust: without it a good signature reads
"Valid" (``signingCredential.untrusted``), with it "Trusted". ``--expect-anchor`` also
requires a ``c2pa.created`` action and the ``org.veilchain.anchor`` assertion. Exit code 0
when every file passes, 1 when one does not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import c2pa

ANCHOR = "org.veilchain.anchor"
ANCHOR_KEYS = ("chain_id", "contract", "registration", "image_index", "image_id")


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".mp4": "video/mp4", ".avi": "video/avi"}  # fmt: skip


def _mime(path: Path) -> str:
    return _MIME.get(path.suffix.lower(), "image/png")


def check(path: Path, context, trusted: bool, expect_anchor: bool) -> dict:
    out = {"file": str(path), "manifest": False, "state": None, "failures": [],
           "signer": None, "created": False, "digital_source_type": None, "anchor": None,
           "ingredients": 0, "thumbnail": False, "problems": []}  # fmt: skip
    try:
        reader = c2pa.Reader.try_create(_mime(path), io.BytesIO(path.read_bytes()), None, context)
    except c2pa.C2paError as exc:
        out["problems"].append(f"manifest cannot be read: {exc}")
        return out
    if reader is None:
        out["problems"].append("no C2PA manifest")
        return out
    with reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    assertions = {a["label"]: a.get("data") for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or {}).get("actions") or []
    out.update(
        manifest=True,
        state=store.get("validation_state"),
        failures=[f["code"] for f in results.get("failure", [])],
        signer=(active.get("signature_info") or {}).get("issuer"),
        created=bool(actions) and actions[0].get("action") == "c2pa.created",
        digital_source_type=actions[0].get("digitalSourceType") if actions else None,
        anchor=assertions.get(ANCHOR),
        ingredients=len(active.get("ingredients") or []),
        thumbnail=bool(active.get("thumbnail")),
    )
    wanted = "Trusted" if trusted else "Valid"
    if out["state"] != wanted:
        out["problems"].append(f"state {out['state']} ({', '.join(out['failures'])}), not {wanted}")
    if expect_anchor:
        if not out["created"]:
            out["problems"].append("the first action is not c2pa.created")
        anchor = out["anchor"]
        missing = [k for k in ANCHOR_KEYS if not isinstance(anchor, dict) or k not in anchor]
        if missing:
            out["problems"].append(f"{ANCHOR} lacks {', '.join(missing)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--trust", type=Path, help="PEM file of CA certificates to trust")
    ap.add_argument("--expect-anchor", action="store_true")
    args = ap.parse_args(argv)
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if args.trust:
        settings["trust"] = {"user_anchors": args.trust.read_text()}
    context = c2pa.Context(c2pa.Settings.from_dict(settings))
    ok = True
    for path in args.files:
        result = check(path, context, bool(args.trust), args.expect_anchor)
        ok = ok and not result["problems"]
        print(json.dumps(result, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
