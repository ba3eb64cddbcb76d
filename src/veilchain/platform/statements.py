"""What an institution states about a data set when it registers it: a description, a
licence and a consent statement, as on a Hugging Face dataset card.

They are published in the manifest's ``dataset`` section (docs/manifest.md), so they are
pinned with it and anchored on chain with its CID: an auditor verifies them with the rest.
Each is checked here, once, before any work: plain text within a length cap. A new version
made from an earlier one (re-encryption) keeps that version's statements.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

from veilchain.errors import InvalidTextError

__all__ = ["FIELDS", "LIMITS", "DatasetStatements"]

# field -> (what users call it, longest text in characters, line breaks allowed)
LIMITS: dict[str, tuple[str, int, bool]] = {
    "description": ("description", 4000, True),
    "licence": ("licence", 200, False),
    "consent": ("consent statement", 8000, True),
}
FIELDS = tuple(LIMITS)
# Bidirectional embedding, override and isolate controls: they make text read differently
# from the characters an auditor hashes ("Trojan Source").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class DatasetStatements:
    """None: not given at registration."""

    description: str | None = None
    licence: str | None = None
    consent: str | None = None

    @classmethod
    def checked(
        cls,
        *,
        description: str | None = None,
        licence: str | None = None,
        consent: str | None = None,
    ) -> DatasetStatements:
        """The statements as published: line ends made ``\\n``, outer white space removed,
        empty as None; InvalidTextError (one line) for text that is too long or holds a
        control character."""
        given = {"description": description, "licence": licence, "consent": consent}
        return cls(**{k: _checked(k, v) for k, v in given.items()})

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _checked(field: str, value: object) -> str | None:
    label, limit, multiline = LIMITS[field]
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTextError(f"the {label} must be text, not {type(value).__name__}")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return None
    if len(text) > limit:
        raise InvalidTextError(
            f"the {label} is {len(text)} characters long; at most {limit} are allowed"
        )
    for i, ch in enumerate(text):
        if ch in "\n\t" and multiline:
            continue
        if ch == "\n":
            raise InvalidTextError(f"the {label} must be one line")
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            raise InvalidTextError(
                f"the {label} holds the control character U+{ord(ch):04X} at character"
                f" {i + 1}; give plain text"
            )
    return text
