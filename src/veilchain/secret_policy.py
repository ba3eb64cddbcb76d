"""What prod refuses as a secret: known public keys, placeholders, weak and low-entropy values.

Every check returns None for an acceptable value or a one-line reason naming the variable at
fault, so that ``config.Settings`` can refuse the first bad one in one sentence. Checks are
heuristics against the mistakes that matter: a key every tool's tutorial publishes (ganache's,
anvil's and eth-tester's deterministic accounts), a development placeholder, a value too short
or too repetitive (``'a' * 32``, an all-zero master key) to be anything but typed by hand.
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = [
    "KNOWN_PUBLIC_ADDRESSES",
    "jwt_secret_problem",
    "master_key_problem",
    "passphrase_problem",
    "private_key_problem",
]

# Accounts whose private keys are published: the first 10 of the standard test mnemonic
# "test test ... junk" (anvil, hardhat, foundry), of ganache --wallet.deterministic ("myth
# like bonus ..."), and eth-tester's keys 1..10 (the embedded chain's dev accounts).
KNOWN_PUBLIC_ADDRESSES = frozenset(
    a.lower()
    for a in (
        # anvil / hardhat
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
        # ganache --wallet.deterministic
        "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1", "0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0",
        "0x22d491Bde2303f2f43325b2108D26f1eAbA1e32b", "0xE11BA2b4D45Eaed5996Cd0823791E0C93114882d",
        "0xd03ea8624C8C5987235048901fB614fDcA89b117", "0x95cED938F7991cd0dFcb48F0a06a40FA1aF46EBC",
        "0x3E5e9111Ae8eB78Fe1CC3bb8915d5D461F3Ef9A9", "0x28a8746e75304c0780E011BEd21C72cD78cd535E",
        "0xACa94ef8bD5ffEE41947b4585a84BdA5a3d3DA6E", "0x1dF62f291b2E969fB0849d99D9Ce41e2F137006e",
        # eth-tester keys 1..10
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF",
        "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69", "0x1efF47bc3a10a45D4B230B5d10E37751FE6AA718",
        "0xe1AB8145F7E55DC933d51a18c793F901A3A0b276", "0xE57bFE9F44b819898F47BF37E5AF72a0783e1141",
        "0xd41c057fd1c78805AAC12B0A94a405c0461A6FBb", "0xF1F6619B38A98d6De0800F1DefC0a6399eB6d30C",
        "0xF7Edc8FA1eCc32967F827C9043FcAe6ba73afA5c", "0x4CCeBa2d7D2B4fdcE4304d3e09a1fea9fbEb1528",
    )
)  # fmt: skip

_PLACEHOLDERS = {"", "change-me", "changeme", "dev", "secret", "password", "passphrase", "test"}
MIN_PASSPHRASE_CHARS = 12
MIN_JWT_SECRET_BYTES = 32  # RFC 7518 3.2: HS256 keys of at least 256 bits
_MIN_PASSPHRASE_BITS = 40  # estimated from its own characters: 12 distinct ones give 43


def _estimated_bits(value: str | bytes) -> float:
    """Length times the empirical Shannon entropy per symbol: 'a' * 32 -> 0, a random
    64-hex-digit string -> ~240, 'correct horse battery staple' -> ~100."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values())


def _placeholder(value: str) -> bool:
    v = value.strip().lower()
    return v in _PLACEHOLDERS or v.startswith("veilchain-dev")


def passphrase_problem(var: str, value: str | None) -> str | None:
    if value is None:
        return f"{var} is not set; set a passphrase of {MIN_PASSPHRASE_CHARS}+ characters for prod"
    if _placeholder(value):
        return f"{var} is a development placeholder; set a real passphrase for prod"
    if len(value) < MIN_PASSPHRASE_CHARS:
        return f"{var} is shorter than {MIN_PASSPHRASE_CHARS} characters; use a longer passphrase"
    if _estimated_bits(value) < _MIN_PASSPHRASE_BITS:
        return f"{var} is too repetitive to be secret; use a random passphrase"
    return None


def jwt_secret_problem(var: str, value: str | None) -> str | None:
    if value is None:
        return f"{var} is not set; set it for prod (openssl rand -hex 32)"
    if _placeholder(value):
        return f"{var} is a development placeholder; set a real secret (openssl rand -hex 32)"
    if len(value.encode()) < MIN_JWT_SECRET_BYTES:
        return f"{var} is shorter than 32 bytes; use openssl rand -hex 32"
    if _estimated_bits(value) < 128:
        return (
            f"{var} has too little entropy (e.g. one repeated character); use openssl rand -hex 32"
        )
    return None


def master_key_problem(var: str, value: str) -> str | None:
    text = value.strip().removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return f"{var} is not hex; use 64 hex characters (openssl rand -hex 32)"
    if len(key) != 32:
        return f"{var} must be 32 bytes (64 hex characters); use openssl rand -hex 32"
    if len(set(key)) < 16:  # a random 32-byte key has ~26 distinct bytes; < 16: 1 in 10^14
        return f"{var} has too little entropy (e.g. all zeros); use openssl rand -hex 32"
    return None


def private_key_problem(var: str, value: str) -> str | None:
    from eth_account import Account

    try:
        address = Account.from_key(value).address
    except Exception:  # noqa: BLE001 - any malformed key is one sentence
        return f"{var} is not a valid private key; use 32 bytes in hex"
    if address.lower() in KNOWN_PUBLIC_ADDRESSES:
        return (
            f"{var} is a published dev-chain key ({address}); anyone can sign as it, "
            "use a key of your own"
        )
    key = bytes.fromhex(value.strip().removeprefix("0x"))
    if len(set(key)) < 16:
        return f"{var} has too little entropy to be a private key; generate a fresh key"
    return None
