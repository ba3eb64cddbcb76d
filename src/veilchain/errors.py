"""Every error Veilchain raises, in one hierarchy.

    VeilchainError
    ├── ConfigError
    ├── InputError                      bad user input (paths, names, arguments)
    │   ├── OutOfRangeError             epsilon, seed or expiry out of bounds (422, exit 2)
    │   └── InvalidTextError            a data set's description, licence or consent statement
    │                                   too long or not plain text (422, exit 2)
    ├── AnonymizationError
    │   ├── ImageDecodeError            corrupt, non-image, unsupported or decompression-bomb input
    │   ├── FaceDetectionError
    │   ├── ModelLoadError              missing or incompatible weights
    │   ├── PrivacyBudgetError          epsilon / clipping parameters out of range
    │   ├── IdentityCheckError          a face stayed recognizable after every retry
    │   ├── UncoveredFaceError          --strict: the second look found a face detection missed
    │   └── UncoveredPlateError         --strict: the second look found a plate detection missed
    ├── ChainError
    │   ├── ChainUnavailableError       node down or unreachable
    │   ├── ContractRevertedError       a revert, decoded to the contract's custom error name
    │   ├── ContractNotDeployedError
    │   └── TransactionFailedError      mined but status 0, or dropped
    ├── StorageError
    │   ├── StorageUnavailableError     IPFS daemon down
    │   │   └── SourceUnavailableError  an input URI's server did not answer (resume later)
    │   ├── ContentNotFoundError
    │   ├── CidMismatchError            daemon CID differs from the locally computed one
    │   └── InvalidCidError             malformed CID (also an InputError: exit code 2)
    ├── KeyManagementError
    │   ├── KeystoreError               wrong passphrase, missing or corrupt keystore
    │   ├── DecryptionError             wrong key, tampered ciphertext or header
    │   ├── KeyVersionError             master key version unknown or retired
    │   ├── DataKeyNotFoundError        no data key stored for that (dataset, image)
    │   └── ContentCredentialsError     C2PA signing identity unusable or a manifest not written
    ├── AuthError
    │   ├── AuthenticationError         bad signature, expired or replayed login
    │   └── AccessDeniedError           no live grant, wrong role
    ├── AuditError
    │   └── AuditChainBrokenError       the hash chain of the audit log does not verify
    └── ServiceError
        ├── DatasetNotFoundError
        ├── ImageNotFoundError          no image at that index of a version
        ├── GrantNotFoundError          the address holds no grant on that data set
        ├── JobNotFoundError
        └── RegistrationStateError      e.g. resume asked for where nothing is pending

Third-party exceptions are translated at the boundary with ``raise ... from exc``.
Messages are one line: what is wrong and what to do.
"""

from __future__ import annotations


class VeilchainError(Exception):
    """Root of every Veilchain error. ``str(err)`` is a one-line message for users."""


class ConfigError(VeilchainError):
    pass


class InputError(VeilchainError):
    pass


class OutOfRangeError(InputError):
    """A number outside what the system can honour (epsilon, seed, grant expiry): 422."""


class InvalidTextError(InputError):
    """A data set statement (description, licence, consent) too long or not plain text: 422."""


# --- anonymizer -------------------------------------------------------------
class AnonymizationError(VeilchainError):
    pass


class ImageDecodeError(AnonymizationError):
    pass


class FaceDetectionError(AnonymizationError):
    pass


class ModelLoadError(AnonymizationError):
    pass


class PrivacyBudgetError(AnonymizationError):
    pass


class IdentityCheckError(AnonymizationError):
    pass


class UncoveredFaceError(AnonymizationError):
    pass


class UncoveredPlateError(AnonymizationError):
    pass


# --- chain ------------------------------------------------------------------
class ChainError(VeilchainError):
    pass


class ChainUnavailableError(ChainError):
    pass


class ContractRevertedError(ChainError):
    """A contract call reverted. ``name`` is the custom error (e.g. ``NotInstitution``)."""

    def __init__(
        self, message: str, *, name: str | None = None, args: tuple = (), reason: str | None = None
    ):
        super().__init__(message)
        self.name = name
        self.error_args = args
        self.reason = reason  # the contract's refusal as a sentence for people, when known


class ContractNotDeployedError(ChainError):
    pass


class TransactionFailedError(ChainError):
    pass


# --- storage ----------------------------------------------------------------
class StorageError(VeilchainError):
    pass


class StorageUnavailableError(StorageError):
    pass


class SourceUnavailableError(StorageUnavailableError):
    """An input URI's server timed out, refused or answered 5xx: transient, so a
    registration is left to resume instead of being given up."""


class ContentNotFoundError(StorageError):
    pass


class CidMismatchError(StorageError):
    pass


class InvalidCidError(StorageError, InputError):
    pass


# --- keys -------------------------------------------------------------------
class KeyManagementError(VeilchainError):
    pass


class KeystoreError(KeyManagementError):
    pass


class DecryptionError(KeyManagementError):
    pass


class KeyVersionError(KeyManagementError):
    pass


class DataKeyNotFoundError(KeyManagementError):
    pass


class ContentCredentialsError(KeyManagementError):
    pass


# --- auth -------------------------------------------------------------------
class AuthError(VeilchainError):
    pass


class AuthenticationError(AuthError):
    pass


class AccessDeniedError(AuthError):
    pass


# --- audit ------------------------------------------------------------------
class AuditError(VeilchainError):
    pass


class AuditChainBrokenError(AuditError):
    pass


# --- service ----------------------------------------------------------------
class ServiceError(VeilchainError):
    pass


class DatasetNotFoundError(ServiceError):
    pass


class ImageNotFoundError(ServiceError):
    pass


class GrantNotFoundError(ServiceError):
    pass


class JobNotFoundError(ServiceError):
    pass


class RegistrationStateError(ServiceError):
    pass
