"""Access commands: grant and revoke (on chain), list grants, local accounts, and a grantee's
fetch of one image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from veilchain.cli import app, settings
from veilchain.cli.datasets import (
    DatasetArg,
    JsonOpt,
    QuietOpt,
    VersionOpt,
    grantee_for,
    open_service,
)
from veilchain.cli.output import errors_to_exit, out, progress_bar, show, show_rows
from veilchain.errors import InputError


@app.command()
def grant(
    dataset_id: DatasetArg,
    to: Annotated[str, typer.Option("--to", metavar="ADDRESS", help="Grantee's address.")],
    days: Annotated[float, typer.Option(metavar="DAYS", help="Grant lifetime in days.")] = 30.0,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Grant an address access to a data set for DAYS (one transaction).

    Example: veilchain grant 1 --to 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1 --days 7
    """
    with errors_to_exit(as_json):
        result = open_service().grant(dataset_id, to, ttl_s=int(days * 86400)).to_dict()
    show("grant", result, as_json=as_json, quiet=quiet, quiet_key="tx_hash")


@app.command()
def revoke(
    dataset_id: DatasetArg,
    grantee: Annotated[str, typer.Option("--from", metavar="ADDRESS", help="Grantee's address.")],
    reencrypt: Annotated[
        bool, typer.Option(help="Also re-encrypt under new keys as a new version.")
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a grant: key releases stop; --reencrypt also re-encrypts as a new version.

    Example: veilchain revoke 1 --from 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1 --reencrypt
    """
    with errors_to_exit(as_json):
        svc = open_service()
        result = svc.revoke(dataset_id, grantee).to_dict()
        if reencrypt:
            bar, update = progress_bar(as_json or quiet)
            with bar:
                new = svc.add_reencrypted_version(dataset_id, progress=update)
            result["new_version"] = new.version
            result["new_manifest_cid"] = new.manifest_cid
    show("revoked", result, as_json=as_json, quiet=quiet, quiet_key="tx_hash")


@app.command()
def grants(
    dataset_id: DatasetArg,
    as_json: JsonOpt = False,
) -> None:
    """List a data set's grants: grantee, state (live, expired, revoked), expiry.

    Example: veilchain grants 1
    """
    from dataclasses import asdict

    with errors_to_exit(as_json):
        rows = open_service(read_only=True).list_grants(dataset_id)
    data = [
        {**asdict(g), "state": "revoked" if g.revoked else ("live" if g.active else "expired")}
        for g in rows
    ]
    show_rows(data, ["grantee", "state", "expires_at", "granted_at"], as_json=as_json,
              empty=f"data set {dataset_id} has no grants")  # fmt: skip


@app.command()
def account(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    export_key: Annotated[
        bool,
        typer.Option(help="Also print the private key (development and test data dirs only)."),
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create (on first use) and show the local account NAME: address and X25519 key.

    The instance's own roles are the accounts `institution`, `auditor` and `keyservice`;
    `--export-key` prints a key to paste into a wallet for the dashboard (not in prod).

    Example: veilchain account alice --export-key
    """
    from veilchain.client import x25519_keypair_for
    from veilchain.platform.wiring import open_keystore

    with errors_to_exit(as_json):
        cfg = settings()
        if export_key and cfg.env == "prod":
            raise InputError("--export-key is refused in prod: keys stay in the keystore")
        keystore = open_keystore(cfg)
        acct = keystore.get_or_create(name)
    data = {"name": name, "address": acct.address, "x25519": x25519_keypair_for(acct)[1].hex()}
    if export_key:
        data["private_key"] = "0x" + bytes(acct.key).hex()
    show("account", data, as_json=as_json, quiet=quiet, quiet_key="address")


@app.command()
def fetch(
    dataset_id: DatasetArg,
    image: Annotated[int, typer.Option(metavar="INDEX", help="Image index in the manifest.")],
    as_account: Annotated[
        str, typer.Option("--as", metavar="NAME", help="Keystore account of the grantee.")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--out", metavar="FILE", help="Where to write the image.")
    ],
    version: VersionOpt = None,
) -> None:
    """As a grantee: get the data key under your grant, fetch, decrypt and check one image
    (its sha256 against the manifest, its Content Credentials against its record; exit 1
    if they do not check).

    Example: veilchain fetch 1 --image 0 --as alice -o face0.png
    """
    with errors_to_exit():
        grantee = grantee_for(as_account)
        checked = grantee(open_service(read_only=True)).fetch_checked(
            dataset_id, image, version=version
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(checked.data)
    out.print(f"wrote {output} ({len(checked.data)} bytes; its sha256 matches the manifest)")
    out.print(f"Content Credentials: {checked.credentials['summary']}")
    for problem in checked.problems:
        out.print(f"  x content credentials: {problem}")
    if checked.problems:
        raise typer.Exit(1)
