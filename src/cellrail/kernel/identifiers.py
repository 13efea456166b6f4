"""ISBT 128 identifiers for chain of identity: the Donation Identification Number and the Chain of Identity id.

DIN (ICCBBA ST-001, Data Structure 001): ``αppppyynnnnnn`` = FIN (5) + nominal year (2) + sequence (6 digits),
printed with a keyboard check character K (ISO/IEC 7064 Mod 37-2); in a barcode ``=`` + DIN + two flag
characters, where flags 60-96 carry 60 + the check value (Type 3 flag).

Chain of Identity identifier (ICCBBA ST-028, Data Structure 040): data identifier ``&/`` and content
``CHαppppyynnnnnn`` = "CH" + FIN + year + 6 alphanumeric characters. It links every collection and product made
for one patient's therapy and carries no patient data. The keyboard check character is computed over the whole
15-character content, "CH" included; ST-028 publishes this form only to licensees, so it is documented in
docs/identifiers.md as the one point to re-check against the standard.

The check characters come from python-stdnum's ISO 7064 implementation, never from hand-written arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_2

from cellrail.kernel.errors import InvalidInput

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_FIN = r"[A-NP-Z1-9][A-Z0-9]{2}[0-9]{2}"
FIN_PATTERN = re.compile(rf"^{_FIN}$")
_DIN = re.compile(rf"^(?P<fin>{_FIN})(?P<year>[0-9]{{2}})(?P<seq>[0-9]{{6}})$")
_COI = re.compile(rf"^CH(?P<fin>{_FIN})(?P<year>[0-9]{{2}})(?P<seq>[0-9A-Z]{{6}})$")
DIN_DATA_IDENTIFIER = "="
COI_DATA_IDENTIFIER = "&/"


def check_character(data: str) -> str:
    """ISO/IEC 7064 Mod 37-2 check character of ``data`` (digits, A-Z)."""
    return str(mod_37_2.calc_check_digit(data))


def _clean(text: str) -> str:
    return re.sub(r"[\s-]", "", text).upper()


def validate_fin(fin: str, field: str = "fin") -> str:
    """A Facility Identification Number as ICCBBA assigns them (e.g. A9999)."""
    if not FIN_PATTERN.match(fin):
        raise InvalidInput.one(field, f"'{fin}' is not an ISBT 128 FIN (5 characters, e.g. A9999)")
    return fin


@dataclass(frozen=True, order=True)
class DIN:
    """An ISBT 128 Donation Identification Number: one collection or one product unit."""

    fin: str
    year: int
    sequence: int

    def __post_init__(self) -> None:
        validate_fin(self.fin)
        if not 0 <= self.year <= 99:
            raise InvalidInput.one("year", "nominal year must be two digits")
        if not 0 <= self.sequence <= 999_999:
            raise InvalidInput.one("sequence", "DIN sequence must be at most 6 digits")

    @property
    def code(self) -> str:
        """The 13-character DIN."""
        return f"{self.fin}{self.year:02d}{self.sequence:06d}"

    @property
    def check(self) -> str:
        return check_character(self.code)

    @property
    def eye_readable(self) -> str:
        """The printed form: DIN followed by its boxed keyboard check character."""
        return f"{self.fin} {self.year:02d} {self.sequence:06d} {self.check}"

    @property
    def barcode_data(self) -> str:
        """Barcode data with a Type 3 flag (60 + check value), which lets a scanner verify the DIN."""
        return f"{DIN_DATA_IDENTIFIER}{self.code}{60 + _ALPHABET.index(self.check)}"

    def __str__(self) -> str:
        return self.code + self.check

    @classmethod
    def parse(cls, text: str, field: str = "din") -> DIN:
        """Read a DIN as scanned or typed: 13 characters, with K, eye-readable with spaces, or barcode data."""
        raw = _clean(text)
        flags: str | None = None
        if raw.startswith(DIN_DATA_IDENTIFIER):
            body = raw[1:]
            if len(body) != 15 or not re.fullmatch(r"[0-9]{2}", body[13:]):
                raise InvalidInput.one(field, f"'{text}' is not ISBT 128 DIN barcode data (=, 13 characters, 2 flags)")
            raw, flags = body[:13], body[13:]
        check: str | None = None
        if len(raw) == 14:
            raw, check = raw[:13], raw[13]
        match = _DIN.match(raw)
        if not match:
            raise InvalidInput.one(field, f"'{text}' is not an ISBT 128 DIN (FIN, 2-digit year, 6-digit sequence)")
        din = cls(match["fin"], int(match["year"]), int(match["seq"]))
        if check is not None and check != din.check:
            raise InvalidInput.one(
                field, f"check character '{check}' does not match DIN {din.code} (expected {din.check})"
            )
        if flags is not None and 60 <= int(flags) <= 96 and int(flags) - 60 != _ALPHABET.index(din.check):
            raise InvalidInput.one(field, f"Type 3 flag {flags} does not match DIN {din.code}")
        return din


@dataclass(frozen=True, order=True)
class ChainOfIdentity:
    """An ISBT 128 Chain of Identity identifier: one patient's therapy, free of patient data."""

    fin: str
    year: int
    sequence: str

    def __post_init__(self) -> None:
        validate_fin(self.fin)
        if not 0 <= self.year <= 99:
            raise InvalidInput.one("year", "nominal year must be two digits")
        if not re.fullmatch(r"[0-9A-Z]{6}", self.sequence):
            raise InvalidInput.one("sequence", "CoI sequence must be 6 characters 0-9 or A-Z")

    @property
    def code(self) -> str:
        """The 15-character data content ``CHαppppyynnnnnn``."""
        return f"CH{self.fin}{self.year:02d}{self.sequence}"

    @property
    def check(self) -> str:
        return check_character(self.code)

    @property
    def barcode_data(self) -> str:
        return f"{COI_DATA_IDENTIFIER}{self.code}"

    @property
    def eye_readable(self) -> str:
        return f"CH {self.fin} {self.year:02d} {self.sequence} {self.check}"

    def __str__(self) -> str:
        return self.code + self.check

    @classmethod
    def from_number(cls, fin: str, year: int, number: int) -> ChainOfIdentity:
        """The n-th CoI of a facility and year; the sequence is ``number`` in base 36, zero-padded."""
        if not 0 <= number < 36**6:
            raise InvalidInput.one("sequence", "CoI sequence exhausted for this facility and year")
        digits = []
        for _ in range(6):
            number, rest = divmod(number, 36)
            digits.append(_ALPHABET[rest])
        return cls(fin, year, "".join(reversed(digits)))

    @classmethod
    def parse(cls, text: str, field: str = "coi") -> ChainOfIdentity:
        """Read a CoI as scanned (``&/`` + content) or typed (content, optionally followed by K)."""
        raw = _clean(text)
        if raw.startswith(COI_DATA_IDENTIFIER):
            raw = raw[len(COI_DATA_IDENTIFIER) :]
        check: str | None = None
        if len(raw) == 16:
            raw, check = raw[:15], raw[15]
        match = _COI.match(raw)
        if not match:
            raise InvalidInput.one(
                field,
                f"'{text}' is not an ISBT 128 Chain of Identity identifier (CH, FIN, year, 6 characters)",
            )
        coi = cls(match["fin"], int(match["year"]), match["seq"])
        if check is not None and check != coi.check:
            raise InvalidInput.one(field, f"check character '{check}' does not match {coi.code} (expected {coi.check})")
        return coi
