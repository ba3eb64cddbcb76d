"""Sign-In with Ethereum (EIP-4361), short-lived JWTs, API keys and rate limits.

Flow: ``issue_nonce`` stores a single-use nonce with a 5-minute life; the client signs a SIWE
message that carries it; ``login`` checks domain, chain id, signature and consumes the nonce
in one conditional UPDATE (so a replay fails), then issues a JWT whose subject is the address.
Roles are never stored here: :class:`RoleResolver` reads them from the contract, per block,
and a :class:`Principal` asks for them only when a check needs them. API keys for
institutions' machines are random tokens stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import jwt
from abnf import GrammarWarning
from eth_utils import is_address, to_checksum_address
from sqlalchemy import DateTime, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from veilchain.chain.blockcache import BlockCache
from veilchain.errors import AuthenticationError
from veilchain.platform.db import Base, affected_rows

# siwe's EIP-4361 grammar redefines a few core ABNF rules on purpose; abnf warns about each
# (four lines of noise on every server start), at import and on the first message parsed
warnings.filterwarnings("ignore", category=GrammarWarning)
from siwe import SiweMessage  # noqa: E402

ROLES = ("admin", "institution", "auditor", "keyservice")
API_KEY_PREFIX = "vk_"
DEFAULT_TOKEN_CACHE_SIZE = 4_096
_JWT_ALG = "HS256"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class AuthNonce(Base):
    """A SIWE nonce: valid until ``expires_at``, consumed once by setting ``used_at``."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiKey(Base):
    """An API key for an address; only the SHA-256 of the token is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Principal:
    """Who is calling: a checksummed address, how it signed in and its on-chain roles.

    The roles are read (through ``resolve``) the first time something asks for them, so a
    request that checks none (a key release: the grant is checked on chain instead) costs no
    role lookup. That read may call the chain: touch ``roles`` from a worker thread (sync
    dependencies and routes), never from the event loop.
    """

    __slots__ = ("_resolve", "_roles", "address", "via")

    def __init__(
        self,
        address: str,
        roles: Iterable[str] | None = None,
        via: str = "jwt",
        *,
        resolve: Callable[[str], frozenset[str]] | None = None,
    ):
        self.address = address
        self.via = via
        self._roles = frozenset(roles) if roles is not None else None
        self._resolve = resolve

    @property
    def roles(self) -> frozenset[str]:
        if self._roles is None:
            self._roles = frozenset(self._resolve(self.address)) if self._resolve else frozenset()
        return self._roles

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def __repr__(self) -> str:
        roles = "unread" if self._roles is None else sorted(self._roles)
        return f"Principal(address={self.address!r}, via={self.via!r}, roles={roles})"


# --- nonces and login -------------------------------------------------------
def issue_nonce(*, session: Session, ttl_s: int) -> AuthNonce:
    """Store and return a fresh single-use nonce; expired ones are swept on the way."""
    now = _now()
    session.query(AuthNonce).filter(AuthNonce.expires_at < now - timedelta(hours=1)).delete()
    row = AuthNonce(
        nonce=secrets.token_hex(16), created_at=now, expires_at=now + timedelta(seconds=ttl_s)
    )
    session.add(row)
    session.commit()
    return row


ISSUED_AT_SKEW_S = 60  # how far ahead of this host's clock a SIWE Issued-At may be


def login(
    *,
    session: Session,
    message: str,
    signature: str,
    domain: str,
    chain_id: int,
    jwt_secret: str,
    token_ttl_s: int,
    uri: str | None = None,
    max_age_s: int = 600,
) -> str:
    """Verify a signed SIWE message and consume its nonce; return a JWT for the signer.
    ``uri`` (when given) must be the message's URI; its Issued-At must lie within the last
    ``max_age_s`` and at most ``ISSUED_AT_SKEW_S`` ahead of this host's clock."""
    try:
        msg = SiweMessage.from_message(message)
    except Exception as exc:  # siwe raises ValueError, pydantic errors and abnf errors
        raise AuthenticationError("malformed SIWE message; build it from GET /auth/nonce") from exc
    if msg.domain != domain:
        raise AuthenticationError(f"SIWE message is for domain {msg.domain!r}, expected {domain!r}")
    if int(msg.chain_id) != int(chain_id):
        raise AuthenticationError(f"SIWE message is for chain {msg.chain_id}, expected {chain_id}")
    if uri is not None and msg.uri != uri:
        raise AuthenticationError(f"SIWE message is for URI {msg.uri!r}, expected {uri!r}")
    now = _now()
    try:
        issued = datetime.fromisoformat(str(msg.issued_at).replace("Z", "+00:00"))
        if issued.tzinfo is None:
            raise ValueError
    except ValueError as exc:
        raise AuthenticationError("SIWE Issued-At is not an RFC 3339 time with a zone") from exc
    if issued > now + timedelta(seconds=ISSUED_AT_SKEW_S):
        raise AuthenticationError("SIWE message is issued in the future; check your clock")
    if issued < now - timedelta(seconds=max_age_s):
        raise AuthenticationError("SIWE message is too old; sign a fresh one")
    try:
        msg.verify(signature, domain=domain)
    except Exception as exc:  # VerificationError, and a signature that recovers no key
        raise AuthenticationError(
            f"SIWE verification failed ({type(exc).__name__}); sign the message again"
        ) from exc
    consumed = affected_rows(
        session.execute(
            update(AuthNonce)
            .where(AuthNonce.nonce == msg.nonce, AuthNonce.used_at.is_(None))
            .where(AuthNonce.expires_at > now)
            .values(used_at=now)
        )
    )
    session.commit()
    if consumed != 1:
        raise AuthenticationError("nonce unknown, expired or already used; get a new one")
    return issue_token(
        address=msg.address, secret=jwt_secret, ttl_s=token_ttl_s, issuer=domain, now=now
    )


def issue_token(
    *, address: str, secret: str, ttl_s: int, issuer: str, now: datetime | None = None
) -> str:
    now = now or _now()
    claims = {
        "sub": to_checksum_address(address),
        "iss": issuer,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=_JWT_ALG)


def decode_token(token: str, *, secret: str, issuer: str) -> str:
    """Return the address a valid, unexpired JWT was issued to."""
    return _decode(token, secret=secret, issuer=issuer)[0]


def _decode(token: str, *, secret: str, issuer: str) -> tuple[str, int]:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[_JWT_ALG], issuer=issuer, options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("access token expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError("invalid access token; sign in again") from exc
    sub = claims.get("sub", "")
    if not is_address(sub):
        raise AuthenticationError("invalid access token subject; sign in again")
    return to_checksum_address(sub), int(claims["exp"])


class TokenVerifier:
    """:func:`decode_token` for one secret and issuer, remembering tokens it has verified.

    Verifying a JWT (signature, claims, address checksum) costs about 0.3 ms, and a client
    sends the same token on every request until it expires. A hit is the very same token
    string, hence the same signed claims, so only its expiry is checked again. Bounded LRU.
    """

    def __init__(self, *, secret: str, issuer: str, size: int = DEFAULT_TOKEN_CACHE_SIZE):
        self._secret, self._issuer, self._size = secret, issuer, size
        self._cache: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, token: str) -> str:
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                self._cache.move_to_end(token)
        if hit is not None:
            if time.time() < hit[1]:  # PyJWT's rule: expired once exp <= now
                return hit[0]
            with self._lock:
                self._cache.pop(token, None)
            raise AuthenticationError("access token expired; sign in again")
        address, exp = _decode(token, secret=self._secret, issuer=self._issuer)
        with self._lock:
            self._cache[token] = (address, exp)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return address


# --- API keys ---------------------------------------------------------------
def _hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(*, session: Session, address: str, name: str) -> tuple[ApiKey, str]:
    """Create an API key for ``address``; the token is returned once and never stored."""
    key_id = secrets.token_hex(8)
    token = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        address=to_checksum_address(address),
        name=name,
        key_sha256=_hash_key(token),
        created_at=_now(),
    )
    session.add(row)
    session.commit()
    return row, token


def list_api_keys(*, session: Session, address: str) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.address == to_checksum_address(address))
    return list(session.scalars(stmt.order_by(ApiKey.created_at)))


def revoke_api_key(*, session: Session, address: str, key_id: str) -> bool:
    """Revoke one of ``address``'s keys; False when there is no such live key."""
    done = affected_rows(
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.address == to_checksum_address(address))
            .where(ApiKey.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
    )
    session.commit()
    return done == 1


def verify_api_key(*, session: Session, token: str) -> str:
    """Return the address of a live API key, or raise AuthenticationError."""
    key_id = token[len(API_KEY_PREFIX) :].split("_", 1)[0]
    row = session.get(ApiKey, key_id) if token.startswith(API_KEY_PREFIX) else None
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.key_sha256, _hash_key(token))
    ):
        raise AuthenticationError("unknown or revoked API key")
    return row.address


# --- roles and rate limits --------------------------------------------------
class RoleResolver:
    """Roles of an address as the contract holds them at the latest block.

    Cached per block with the contract calls pinned to that block
    (:class:`veilchain.chain.blockcache.BlockCache`): never a role the chain has since
    revoked, one block-number read while the chain stands still, and one contract read when
    several threads miss the same address at once.
    """

    def __init__(
        self, roles_of: Callable[..., Iterable[str]], block_number: Callable[[], int]
    ) -> None:
        self._roles_of = roles_of  # roles_of(address, block=n)
        self._cache: BlockCache[frozenset[str]] = BlockCache(block_number)

    def __call__(self, address: str) -> frozenset[str]:
        return self._cache.get(
            address, lambda block: frozenset(self._roles_of(address, block=block))
        )


class RateLimiter:
    """Sliding-window limit of ``limit`` calls per ``window_s`` per key (client address)."""

    def __init__(self, limit: int, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Record a call; return 0 when allowed, else the seconds until the next is allowed."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] >= self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return max(self.window_s - (now - q[0]), 0.001)
            q.append(now)
            if len(self._hits) > 10_000:  # drop idle clients
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]
            return 0.0
