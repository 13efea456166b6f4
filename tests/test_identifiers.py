"""ISBT 128 identifiers: DIN check characters against ICCBBA's worked examples, every accepted written form,
rejection naming the field, the Chain of Identity id, and the error-detection promise of ISO/IEC 7064 Mod 37-2.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellrail.kernel.errors import InvalidInput
from cellrail.kernel.identifiers import DIN, ChainOfIdentity, check_character, validate_fin

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


def reference_mod_37_2(data: str) -> str:
    """ISO/IEC 7064 Mod 37-2 written out from the standard, as an oracle independent of python-stdnum."""
    p = 0
    for char in data:
        p = ((p + ALPHABET.index(char)) * 2) % 37
    return ALPHABET[(38 - p) % 37]


def only_problem(error: pytest.ExceptionInfo[InvalidInput]) -> tuple[str, str]:
    assert len(error.value.problems) == 1
    problem = error.value.problems[0]
    return problem.field, problem.message


# ICCBBA ST-001, Appendix A: DIN, keyboard check character K, Type 3 flag (60 + check value).
PUBLISHED = [
    ("G1234", 17, 654321, "A", 70),
    ("G1234", 98, 654321, "H", 77),
    ("A9999", 21, 123456, "3", 63),
    ("A9998", 18, 123456, "N", 83),
    ("A9998", 20, 123456, "E", 74),
    ("A9999", 17, 123456, "9", 69),
    ("A9999", 17, 345628, "*", 96),
    ("A9999", 17, 123654, "Y", 94),
    ("A9999", 15, 1, "M", 82),
]


@pytest.mark.parametrize(("fin", "year", "seq", "check", "flag"), PUBLISHED)
def test_published_din_check_characters(fin: str, year: int, seq: int, check: str, flag: int) -> None:
    din = DIN(fin, year, seq)
    code = f"{fin}{year:02d}{seq:06d}"
    assert din.code == code
    assert din.check == check
    assert check_character(code) == check
    assert reference_mod_37_2(code) == check
    assert str(din) == code + check
    assert din.eye_readable == f"{fin} {year:02d} {seq:06d} {check}"
    assert din.barcode_data == f"={code}{flag}"


def test_first_example_barcode_data_exactly() -> None:
    assert DIN("G1234", 17, 654321).barcode_data == "=G12341765432170"


@pytest.mark.parametrize(("fin", "year", "seq", "check", "flag"), PUBLISHED)
def test_parse_every_accepted_form(fin: str, year: int, seq: int, check: str, flag: int) -> None:
    din = DIN(fin, year, seq)
    code = din.code
    forms = [
        code,  # 13 characters
        code + check,  # with K
        f"{fin} {year:02d} {seq:06d} {check}",  # eye-readable as printed
        f"{fin} {year:02d} {seq:06d}",  # eye-readable without K
        f"  {code.lower()}{check.lower()}  ",  # typed in lower case with stray blanks
        f"{fin}-{year:02d}-{seq:06d}-{check}",  # hyphenated
        f"={code}{flag}",  # barcode data with its Type 3 flag
        f"={code}00",  # barcode data with a Type 1 flag (no check information)
    ]
    for form in forms:
        parsed = DIN.parse(form)
        assert parsed == din, form
        assert (parsed.fin, parsed.year, parsed.sequence) == (fin, year, seq)


def test_parse_rejects_wrong_keyboard_check_character_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as error:
        DIN.parse("G123417654321B", "scan.din")
    assert only_problem(error) == (
        "scan.din",
        "check character 'B' does not match DIN G123417654321 (expected A)",
    )


def test_parse_rejects_wrong_type_3_flag_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as error:
        DIN.parse("=G12341765432171")
    assert only_problem(error) == ("din", "Type 3 flag 71 does not match DIN G123417654321")


def test_parse_rejects_every_wrong_type_3_flag() -> None:
    for flag in range(60, 97):
        text = f"=G123417654321{flag}"
        if flag == 70:
            assert DIN.parse(text) == DIN("G1234", 17, 654321)
            continue
        with pytest.raises(InvalidInput, match=f"Type 3 flag {flag} does not match"):
            DIN.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "O123417654321",  # FIN may not start with the letter O
        "0123417654321",  # nor with the digit zero
        "G12A417654321",  # FIN ends in two digits
        "G12341765432",  # 12 characters
        "G1234176543210A",  # 15 characters
        "G12341765432A",  # sequence must be digits
        "",
    ],
)
def test_parse_rejects_malformed_din_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        DIN.parse(text, "label.din")
    field, message = only_problem(error)
    assert field == "label.din"
    assert message == f"'{text}' is not an ISBT 128 DIN (FIN, 2-digit year, 6-digit sequence)"


@pytest.mark.parametrize("text", ["=G1234176543217", "=G123417654321700", "=G1234176543217A", "=G12341765432"])
def test_parse_rejects_malformed_barcode_data(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        DIN.parse(text)
    assert only_problem(error) == ("din", f"'{text}' is not ISBT 128 DIN barcode data (=, 13 characters, 2 flags)")


def test_din_constructor_names_the_bad_field() -> None:
    for args, field in [
        (("O1234", 17, 1), "fin"),
        (("01234", 17, 1), "fin"),
        (("G1234", 100, 1), "year"),
        (("G1234", -1, 1), "year"),
        (("G1234", 17, 1_000_000), "sequence"),
        (("G1234", 17, -1), "sequence"),
    ]:
        with pytest.raises(InvalidInput) as error:
            DIN(*args)  # type: ignore[arg-type]
        assert only_problem(error)[0] == field, args


def test_validate_fin() -> None:
    assert validate_fin("A9999") == "A9999"
    assert validate_fin("19999") == "19999"
    for bad in ("O9999", "09999", "A999", "A99999", "A99X9", "a9999"):
        with pytest.raises(InvalidInput) as error:
            validate_fin(bad, "nodes.fin")
        assert only_problem(error) == ("nodes.fin", f"'{bad}' is not an ISBT 128 FIN (5 characters, e.g. A9999)")


# --- Chain of Identity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "sequence"),
    [
        (0, "000000"),
        (1, "000001"),
        (9, "000009"),
        (10, "00000A"),
        (35, "00000Z"),
        (36, "000010"),
        (36 * 36 + 35, "00010Z"),
        (1_000_000, "00LFLS"),
        (36**6 - 1, "ZZZZZZ"),
    ],
)
def test_coi_sequence_is_base_36(number: int, sequence: str) -> None:
    coi = ChainOfIdentity.from_number("A1001", 26, number)
    assert coi.sequence == sequence
    assert int(coi.sequence, 36) == number
    assert coi.code == f"CHA100126{sequence}"
    assert coi.check == reference_mod_37_2(coi.code)
    assert str(coi) == coi.code + coi.check
    assert coi.barcode_data == f"&/CHA100126{sequence}"
    assert coi.eye_readable == f"CH A1001 26 {sequence} {coi.check}"


def test_coi_exact_forms() -> None:
    coi = ChainOfIdentity.from_number("A1001", 26, 1)
    assert str(coi) == "CHA100126000001K"
    assert coi.barcode_data == "&/CHA100126000001"
    assert coi.eye_readable == "CH A1001 26 000001 K"


@pytest.mark.parametrize("number", [-1, 36**6, 36**6 + 5])
def test_coi_from_number_rejects_out_of_range(number: int) -> None:
    with pytest.raises(InvalidInput) as error:
        ChainOfIdentity.from_number("A1001", 26, number)
    assert only_problem(error) == ("sequence", "CoI sequence exhausted for this facility and year")


@given(
    fin=st.from_regex(r"[A-NP-Z1-9][A-Z0-9]{2}[0-9]{2}", fullmatch=True),
    year=st.integers(0, 99),
    number=st.integers(0, 36**6 - 1),
)
def test_coi_round_trip(fin: str, year: int, number: int) -> None:
    coi = ChainOfIdentity.from_number(fin, year, number)
    assert int(coi.sequence, 36) == number
    assert coi.check == reference_mod_37_2(coi.code)
    for form in (
        coi.code,
        str(coi),
        coi.barcode_data,
        coi.barcode_data + coi.check,
        coi.eye_readable,
        str(coi).lower(),
    ):
        assert ChainOfIdentity.parse(form) == coi, form


def test_coi_parse_rejects_wrong_check_character() -> None:
    with pytest.raises(InvalidInput) as error:
        ChainOfIdentity.parse("&/CHA100126000001L", "scan.coi")
    assert only_problem(error) == (
        "scan.coi",
        "check character 'L' does not match CHA100126000001 (expected K)",
    )


@pytest.mark.parametrize(
    "text",
    [
        "A100126000001K",  # no CH
        "XXA100126000001K",  # not CH
        "CHO100126000001K",  # FIN starting with O
        "CH0100126000001K",  # FIN starting with 0
        "CHA1001260000*1K",  # sequence is 0-9 A-Z only
        "CHA10012600001",  # too short
        "=CHA100126000001",  # DIN data identifier, not the CoI one
        "",
    ],
)
def test_coi_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        ChainOfIdentity.parse(text)
    field, message = only_problem(error)
    assert field == "coi"
    assert message == f"'{text}' is not an ISBT 128 Chain of Identity identifier (CH, FIN, year, 6 characters)"


# --- Mod 37-2 detects every single substitution (and every adjacent transposition) ---------------------------------

dins = st.builds(
    DIN,
    fin=st.from_regex(r"[A-NP-Z1-9][A-Z0-9]{2}[0-9]{2}", fullmatch=True),
    year=st.integers(0, 99),
    sequence=st.integers(0, 999_999),
)


@given(din=dins, position=st.integers(0, 13), replacement=st.sampled_from(ALPHABET))
def test_any_single_substitution_in_din_with_k_is_detected(din: DIN, position: int, replacement: str) -> None:
    text = str(din)
    assert len(text) == 14
    if text[position] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    altered = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidInput):
        DIN.parse(altered)
    if position < 13 and replacement != "*":
        # The arithmetic itself, not only the format check: the altered data has a different check character.
        assert check_character(altered[:13]) != din.check


@given(din=dins, position=st.integers(0, 11))
def test_any_adjacent_transposition_in_din_changes_the_check(din: DIN, position: int) -> None:
    code = din.code
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    assert check_character(swapped) != din.check


@given(
    number=st.integers(0, 36**6 - 1),
    position=st.integers(0, 15),
    replacement=st.sampled_from(ALPHABET),
)
def test_any_single_substitution_in_coi_with_k_is_detected(number: int, position: int, replacement: str) -> None:
    text = str(ChainOfIdentity.from_number("A1001", 26, number))
    if text[position] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    altered = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidInput):
        ChainOfIdentity.parse(altered)
