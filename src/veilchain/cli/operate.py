"""Running an instance: serve, demo, jobs, keys, chain, audit, cid."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from veilchain.cli import app, settings
from veilchain.cli.datasets import JsonOpt, open_service
from veilchain.cli.output import console, emit_json, errors_to_exit, out, show, show_rows
from veilchain.errors import InputError

keys_app = typer.Typer(
    no_args_is_help=True,
    help="The key service: master key versions. Example: veilchain keys status",
)
chain_app = typer.Typer(
    no_args_is_help=True, help="The VeilRegistry contract. Example: veilchain chain info"
)
audit_app = typer.Typer(
    no_args_is_help=True, help="The hash-chained audit log. Example: veilchain audit verify"
)
app.add_typer(keys_app, name="keys")
app.add_typer(chain_app, name="chain")
app.add_typer(audit_app, name="audit")


@app.command()
def demo(
    method: Annotated[
        str | None, typer.Option(metavar="METHOD", help="Method (default: best available).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job on embedded defaults: register -> verify -> grant -> fetch -> tamper.

    Example: veilchain --data-dir /tmp/demo demo --method blur
    """
    from veilchain.platform.demo import run_demo

    with errors_to_exit(as_json):
        summary = run_demo(
            open_service(), method=method, say=(lambda m: None) if as_json else out.print
        )
    if as_json:
        emit_json(summary)
    if not summary["ok"]:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port.")] = 8000,
    workers_off: Annotated[
        bool, typer.Option("--no-worker", help="Leave queued jobs to another process.")
    ] = False,
) -> None:
    """Run the HTTP API and the dashboard (FastAPI + uvicorn).

    Example: veilchain serve --port 8000, then open http://127.0.0.1:8000/dashboard/
    """
    import uvicorn

    from veilchain.platform.api import create_app

    with errors_to_exit():
        cfg = settings()
        api = create_app(cfg, worker=not workers_off)
    proxies = cfg.auth.trusted_proxies.strip()
    # What exists now (modules, the app, the chain, ~200k objects) lives as long as the
    # process. Frozen, it is left out of the collector's full passes, each of which paused
    # every request for 100-300 ms (docs/api.md, "Load").
    gc.collect()
    gc.freeze()
    console.print(
        f"dashboard: http://{host}:{port}/dashboard/  API docs: http://{host}:{port}/docs"
    )
    uvicorn.run(
        api, host=host, port=port, log_level="info", access_log=False,
        # X-Forwarded-For is believed only from the proxies the operator names (uvicorn
        # otherwise trusts it from 127.0.0.1, so a local client could pick its own address).
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
    )  # fmt: skip


@app.command()
def jobs(
    status: Annotated[
        str | None,
        typer.Option(metavar="STATUS", help="queued | running | succeeded | failed."),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List the API's background jobs (uploads being registered, verifications), newest first.

    Example: veilchain jobs --status failed
    """
    from veilchain.platform import jobs as job_rows

    with errors_to_exit(as_json):
        if status not in (None, "queued", "running", "succeeded", "failed"):
            raise InputError("--status must be queued, running, succeeded or failed")
        svc = open_service(read_only=True)
        with svc.session_factory() as s:
            rows, _ = job_rows.list_jobs(session=s, owner=None, status=status, limit=limit,
                                         offset=0)  # fmt: skip
    data = [
        {"id": j.id, "kind": j.kind, "status": j.status, "owner": j.owner,
         "progress": f"{j.progress_done}/{j.progress_total}" if j.progress_total else "-",
         "created_at": j.created_at, "error": j.error}
        for j in rows
    ]  # fmt: skip
    show_rows(data, ["id", "kind", "status", "progress", "created_at", "owner", "error"],
              as_json=as_json, empty="no jobs")  # fmt: skip


@app.command()
def cid(file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False)]) -> None:
    """Print the CIDv1 Kubo gives for `ipfs add --cid-version=1 --raw-leaves FILE`.

    Example: veilchain cid face0.png
    """
    from veilchain.platform.storage import compute_cid_file

    with errors_to_exit():
        if not file.is_file():
            raise InputError(f"{file} is not a file")
        out.print(compute_cid_file(file))


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """New master key version; rewrap every data key under it.

    Example: veilchain keys rotate --json
    """
    with errors_to_exit(as_json):
        result = open_service().rotate_keys()
    show("master key rotated", result, as_json=as_json)


@keys_app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """Master key versions and how many data keys each wraps.

    Example: veilchain keys status
    """
    with errors_to_exit(as_json):
        status = open_service(read_only=True).keys.status().to_dict()
    show("key service", status, as_json=as_json)


@chain_app.command("deploy")
def chain_deploy(as_json: JsonOpt = False) -> None:
    """Deploy (or attach to) VeilRegistry and appoint this instance's roles.

    Example: veilchain --rpc http://127.0.0.1:8545 chain deploy
    """
    with errors_to_exit(as_json):
        svc = open_service()
        data = {
            "chain_id": svc.chain_id,
            "contract": svc.chain.address,
            "deploy_block": svc.chain.deploy_block,
            **{role: svc.accounts.address(role) for role in svc.accounts},
        }
    show("VeilRegistry", data, as_json=as_json)


@chain_app.command("info")
def chain_info(as_json: JsonOpt = False) -> None:
    """The deployment record an auditor pins: chain, contract, code hash, admin, institutions.

    Example: veilchain chain info --json > deployment.json
    """
    from veilchain.platform.trust import deployment_record

    with errors_to_exit(as_json):
        svc = open_service(read_only=True)
        data = deployment_record(svc.chain, svc.accounts)
    show("VeilRegistry deployment", data, as_json=as_json)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain and its newest on-chain anchor. Exit 1 if broken.

    Example: veilchain audit verify
    """
    with errors_to_exit(as_json):
        verdict = open_service(read_only=True).audit_verdict()
    show("audit log", verdict.to_dict(), as_json=as_json)
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(as_json: JsonOpt = False) -> None:
    """Anchor the audit log's head hash on chain (key service).

    Example: veilchain audit anchor
    """
    with errors_to_exit(as_json):
        data = open_service().anchor_audit()
    show("audit anchored", data, as_json=as_json)
