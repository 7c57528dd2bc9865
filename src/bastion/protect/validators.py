"""Checksums and validity tests run on pattern candidates only (never on whole texts)."""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType
from typing import Any

import phonenumbers

Validator = Callable[[str], bool]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


#: Deletes every ASCII character but the digits (``str.translate``).
_ASCII_NON_DIGITS = {b: None for b in range(128) if not chr(b).isdigit()}


def digits_of(value: str) -> str:
    """The digits of a value, separators dropped."""
    if value.isascii():
        return value.translate(_ASCII_NON_DIGITS)
    return "".join(c for c in value if c.isdigit())


def luhn(value: str) -> bool:
    """Luhn (mod 10) checksum over the digits of ``value``."""
    digits = digits_of(value)
    if len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: Issuer prefixes (IIN ranges) and lengths of the card networks in use.
def _card_issuer_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    p2, p4, p6 = int(d[:2]), int(d[:4]), int(d[:6])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= int(d[:3]) <= 649 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if p2 in (36, 38, 39) or 300 <= int(d[:3]) <= 305 or p4 == 3095:
        return 14 <= n <= 19
    if p2 == 62:
        return 16 <= n <= 19
    if p2 in (50, 56, 57, 58, 63, 67, 68, 69, 60):
        return 12 <= n <= 19
    return False


def credit_card(value: str) -> bool:
    """A known card network prefix and length, and a valid Luhn checksum."""
    d = digits_of(value)
    if not 13 <= len(d) <= 19 or len(set(d)) == 1:
        return False
    return _card_issuer_ok(d) and luhn(d)


def iban(value: str) -> bool:
    """ISO 13616 IBAN: the mod-97 check, the country's BBAN structure and its national check.

    The same verdict as ``stdnum.iban.is_valid``, with the per-country registry lookup and
    structure regex done once per country instead of on every call.
    """
    from stdnum import iban as std_iban
    from stdnum.exceptions import ValidationError

    number = "".join(value.split()).replace("-", "").upper()
    # stdnum's compact also drops dots and maps look-alike characters, which ASCII has none of.
    number = number.replace(".", "") if number.isascii() else std_iban.compact(number)
    if not mod97_checksum_ok(number):
        return False
    structure = _iban_structure(number[:2])
    if structure is None or structure.match(number[4:]) is None:
        return False
    module = std_iban._get_cc_module(number[:2])
    if module:
        try:
            module.validate(number)
        except ValidationError:
            return False
    return True


def mod97_checksum_ok(number: str) -> bool:
    """ISO 7064 mod 97-10 over ``number`` with its first four characters moved to the end, as stdnum checks it."""
    moved = number[4:] + number[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


@lru_cache(maxsize=512)
def _iban_structure(country: str) -> re.Pattern[str] | None:
    """The BBAN structure of a country in stdnum's IBAN registry, or None when it has no entry."""
    from stdnum import iban as std_iban

    props = std_iban._ibandb.info(country)[0][1]
    if not props:
        return None
    return std_iban._struct_to_re(props.get("bban", ""))


def mod97(value: str) -> bool:
    """ISO 7064 mod 97-10 over the value with its first four characters moved to the end."""
    compact = "".join(c for c in value.upper() if c.isalnum())
    if len(compact) < 5:
        return False
    moved = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def us_ssn(value: str) -> bool:
    """The SSA's rules: no area 000, 666 or 9xx, no group 00, no serial 0000, no well-known samples."""
    d = digits_of(value)
    if len(d) != 9 or len(set(d)) == 1:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in ("123456789", "078051120", "219099999")


def us_itin(value: str) -> bool:
    """ITIN: 9xx-[50-65|70-88|90-92|94-99]-xxxx."""
    d = digits_of(value)
    if len(d) != 9 or d[0] != "9":
        return False
    g = int(d[3:5])
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


def aba_routing(value: str) -> bool:
    """ABA routing number: a valid Federal Reserve prefix and the 3-7-1 weighted checksum."""
    d = digits_of(value)
    if len(d) != 9:
        return False
    prefix = int(d[:2])
    if not (0 <= prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80):
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * k for c, k in zip(d, w, strict=True)) % 10 == 0 and len(set(d)) > 1


def npi(value: str) -> bool:
    """US National Provider Identifier: 10 digits, Luhn over the 80840 prefix."""
    d = digits_of(value)
    return len(d) == 10 and d[0] in "12" and luhn("80840" + d)


def uk_nhs(value: str) -> bool:
    """NHS number: 10 digits with a mod-11 check digit."""
    d = digits_of(value)
    if len(d) != 10 or len(set(d)) == 1:
        return False
    total = sum(int(c) * (10 - i) for i, c in enumerate(d[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(d[9])


def ipv4(value: str) -> bool:
    """A dotted-quad IPv4 address other than 0.0.0.0 and the broadcast address."""
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return str(addr) not in ("0.0.0.0", "255.255.255.255")  # noqa: S104 - compared, not bound


def ipv6(value: str) -> bool:
    """An IPv6 address with at least three groups (so times like 10:30 never pass)."""
    if value.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def phone(value: str) -> bool:
    """A number of a possible length for its region (US when there is no ``+`` prefix)."""
    d = digits_of(value)
    if not 7 <= len(d) <= 15 or len(set(d)) == 1:
        return False
    value = value.strip()
    if value.startswith("(+"):
        value = "+" + value[2:].replace(")", " ", 1)
    if value[0] in "(123456789":
        # NANP (no country code, no trunk 0): ten digits, or eleven after a leading 1, is
        # exactly what phonenumbers calls a possible US number; skip its parser.
        return len(d) == 10 or len(d) == 11 and d[0] == "1"
    if _LENGTH_RULES is not None and _PLAIN_INTERNATIONAL.fullmatch(value) is not None:
        # '+', ASCII digits and plain separators: nothing but the digits counts, and the parser's
        # generic steps (extensions, letters, RFC 3966) find nothing to do.
        return _possible_international(d, _LENGTH_RULES)
    # Without a country code, a trunk '0' means a European national number; else NANP.
    regions: tuple[str | None, ...] = (
        (None,) if value.startswith("+") else _TRUNK_REGIONS if value.startswith("0") else ("US",)
    )
    for region in regions:
        try:
            num = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(num):
            return True
    return False


#: A number written with its country code in ASCII digits and plain separators only.
_PLAIN_INTERNATIONAL = re.compile(r"\+[0-9 .()-]{0,200}[0-9]")


#: phonenumbers' national-prefix stripping and length test, the results that keep a prefix and those that pass.
_LengthRules = tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...], tuple[Any, ...]]


def _length_rules() -> _LengthRules | None:
    """phonenumbers' national-prefix and length checks, or None when this version has other internals."""
    try:
        from phonenumbers import phonenumberutil as util

        valid = util.ValidationResult
        kept = (valid.TOO_SHORT, valid.IS_POSSIBLE_LOCAL_ONLY, valid.INVALID_LENGTH)
        possible = (valid.IS_POSSIBLE, valid.IS_POSSIBLE_LOCAL_ONLY)
        return util._maybe_strip_national_prefix_carrier_code, util._test_number_length, kept, possible
    except (ImportError, AttributeError):
        return None


_LENGTH_RULES = _length_rules()


@lru_cache(maxsize=512)
def _code_metadata(code: int) -> Any:
    """phonenumbers' metadata for a country calling code (that of its main region)."""
    return phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code))


def _possible_international(digits: str, rules: _LengthRules) -> bool:
    """``is_possible_number(parse("+" + digits))``, in the steps the parser takes for digits alone.

    ``digits`` are ASCII digits. The parser takes the country code (one to three digits
    naming a known code, never starting with 0), strips a national prefix when what
    remains still has a possible length, and the national number is then checked for a
    possible length of the code's main region; any failure on the way means not possible.
    """
    strip_prefix, test_length, not_stripped, possible = rules
    if len(digits) <= 2 or digits[0] == "0":
        return False
    for k in (1, 2, 3):
        code = int(digits[:k])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[k:]
    if len(national) < 2:
        return False
    metadata = _code_metadata(code)
    stripped = strip_prefix(national, metadata)[1]
    if test_length(stripped, metadata) not in not_stripped:
        national = stripped
    if not 2 <= len(national) <= 17:
        return False
    return test_length(national, metadata) in possible


_TRUNK_REGIONS = ("DE", "GB", "FR", "IT", "ES", "NL", "AT", "CH")


def _b58decode(value: str) -> bytes | None:
    n = 0
    for c in value:
        idx = _B58_INDEX.get(c)
        if idx is None:
            return None
        n = n * 58 + idx
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(value) - len(value.lstrip("1"))
    return b"\0" * pad + body


def bitcoin_base58(value: str) -> bool:
    """A Base58Check bitcoin address (P2PKH or P2SH) with a valid double-SHA256 checksum."""
    raw = _b58decode(value)
    if raw is None or len(raw) != 25 or raw[0] not in (0, 5):
        return False
    check = hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4]
    return check == raw[-4:]


def _bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bitcoin_bech32(value: str) -> bool:
    """A bech32 or bech32m segwit address (``bc1...``) with a valid checksum."""
    v = value.lower()
    hrp, _, data = v.rpartition("1")
    if hrp != "bc" or not 6 <= len(data) <= 87 or any(c not in _BECH32 for c in data):
        return False
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + [_BECH32.index(c) for c in data]
    return _bech32_polymod(values) in (1, 0x2BC830A3)


def ethereum(value: str) -> bool:
    """``0x`` and 40 varied hex digits."""
    body = value[2:]
    # Python's hashlib has no Keccak-256 (SHA3 pads differently), so the EIP-55 case
    # checksum is not verified; a varied 40-digit hex body is what is required.
    return len(body) == 40 and len(set(body.lower())) >= 6 and all(c in "0123456789abcdefABCDEF" for c in body)


@lru_cache(maxsize=64)
def _stdnum_module(name: str) -> ModuleType:
    return importlib.import_module(f"stdnum.{name}")


def stdnum_validator(name: str) -> Validator:
    """A validator backed by ``stdnum.<name>.is_valid`` (imported once, when first built)."""
    module = _stdnum_module(name)
    check = getattr(module, "is_valid", None)
    if not callable(check):
        raise ValueError(f"stdnum.{name} has no is_valid()")

    def _valid(value: str) -> bool:
        return bool(check(value))

    return _valid


#: Validators by the names configuration uses.
NAMED: dict[str, Validator] = {
    "luhn": luhn,
    "mod97": mod97,
    "iban": iban,
    "aba": aba_routing,
    "phone": phone,
}


def resolve(name: str) -> Validator:
    """The validator a configuration names (``luhn``, ``mod97``, ``stdnum:de.idnr`` ...)."""
    if name.startswith("stdnum:"):
        return stdnum_validator(name[len("stdnum:"):])
    try:
        return NAMED[name]
    except KeyError:
        raise ValueError(f"unknown validator {name!r}") from None
