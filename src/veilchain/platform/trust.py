"""What an auditor pins before verifying: the contract, its chain and the institutions.

``deployment_record`` is the document ``veilchain chain info --json`` prints and the API
serves at ``/.well-known/veilchain.json`` (docs/contract.md, "Which contract and institution
to trust"). It is a claim by the operator: an auditor checks it against the chain (code hash,
genesis hash, InstitutionAdded events) and against a second channel before trusting it.
"""

from __future__ import annotations

from eth_utils import keccak

from veilchain.chain import load_artifact

DEPLOYMENT_FORMAT = "veilchain-deployment/1"


def _members(chain, added: str, removed: str) -> list[dict]:
    """Current holders of a role, replayed from its Added/Removed events in block order."""
    events = [(e, True) for e in chain._logs(added)] + [(e, False) for e in chain._logs(removed)]
    events.sort(key=lambda p: (p[0]["blockNumber"], p[0]["logIndex"]))
    members: dict[str, dict] = {}
    for event, on in events:
        account = event["args"]["account"]
        if on:
            members[account] = {"address": account, "added_block": int(event["blockNumber"])}
        else:
            members.pop(account, None)
    return list(members.values())


def deployment_record(chain, accounts=None, credentials: dict | None = None) -> dict:
    """The trust anchors of this installation, read from the chain (plus its own roles);
    ``credentials``: its institution's Content Credentials signer (CA certificate to trust,
    signing certificate; docs/provenance.md)."""
    artifact = load_artifact()
    backend = chain.backend
    code = backend.get_code(chain.address)
    own = accounts.address("institution") if hasattr(accounts, "address") else None
    return {
        "format": DEPLOYMENT_FORMAT,
        "chain_id": str(backend.chain_id),
        "genesis_hash": backend.genesis_hash(),
        "contract": chain.address,
        "deploy_block": chain.deploy_block,
        "deployed_bytecode_keccak256": "0x" + keccak(code).hex(),
        "artifact_deployed_bytecode_keccak256": "0x"
        + keccak(hexstr=artifact["deployedBytecode"]).hex(),
        "compiler": artifact["compiler"]["version"],
        "source_sha256": artifact["sourceSha256"],
        "admin": chain.admin(),
        "key_service": chain.key_service(),
        "institution": own,
        "institutions": _members(chain, "InstitutionAdded", "InstitutionRemoved"),
        "auditors": _members(chain, "AuditorAdded", "AuditorRemoved"),
        "content_credentials": credentials,
    }
