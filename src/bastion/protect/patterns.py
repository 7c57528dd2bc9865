"""The built-in pattern detectors: one declarative table, compiled once by the engines.

Every regex here must (1) mean the same to Python's ``re`` (with ``re.ASCII``)
and to hyperscan, so no look-arounds or backreferences, and (2) stay linear:
no nested unbounded quantifiers and no adjacent quantifiers that can share the
same characters. ``tests/unit/test_detect_engine.py`` checks both on 100 KB of
adversarial input. A named group ``v`` marks the part of a match that is
reported (the password in ``password=...``); hyperscan sees it as a plain group.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bastion.protect import validators as v

Check = Callable[[str], bool]

#: Words near a number that say it is not personal data.
NUMBER_NEGATIVE = (
    "order", "tracking", "invoice", "ref", "reference", "isbn", "sku", "version", "build",
    "uuid", "serial", "ticket", "part", "model", "release", "issue", "pr", "commit", "port",
)


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """One pattern detector: what it matches, how candidates are checked and scored."""

    name: str
    type: str
    regex: str
    score: float
    validator: Check | None = None
    validator_name: str = ""
    context: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    require_context: bool = False
    caseless: bool = False
    #: On a failed check, retry shorter prefixes ending at a separator (numbers that ran into the next one).
    trim: bool = False
    #: Reject a match touching ``.``+digit or a digit on either side (versions, longer numbers).
    standalone: bool = False
    #: Characters before the match searched for context words.
    window_before: int = 48
    window_after: int = 24
    data_classes: tuple[str, ...] = ()
    detector: str = "pattern"
    tenants: tuple[str, ...] = field(default=())
    #: A looser expression hyperscan compiles instead (it must match everything ``regex`` matches);
    #: for patterns whose exact form is slow to compile with start-of-match tracking.
    prefilter: str = ""


def _jwt(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        obj = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(obj, dict) and ("alg" in obj or "typ" in obj)


def _mrn(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= 5


_PLACEHOLDER = re.compile(
    r"^(?:\$\{?[A-Za-z_]|<|\{\{|%\(|\*{3}|x{4}|\.\.\.|true$|false$|null$|none$|required$|optional$|string$|"
    r"password$|secret$|token$|your[_-]|example|changeme$|env\.|os\.environ|process\.env|getenv)",
    re.IGNORECASE,
)


def _secret_value(value: str) -> bool:
    """A value assigned to a password-like name that is not a placeholder or reference."""
    if _PLACEHOLDER.search(value) or len(set(value)) < 4:
        return False
    return not value.replace("_", "").isalpha() or len(value) >= 12 and not value.islower()


def _url_password(value: str) -> bool:
    """A password in a URL's user-info part: anything but a template or a mask."""
    return len(value) >= 3 and not _PLACEHOLDER.search(value) and len(set(value)) > 1


def _spelled_email(value: str) -> bool:
    local = re.split(r"[\s\[\(\{<@]", value, maxsplit=1)[0].lower()
    return local not in _EMAIL_STOP_LOCALS


_EMAIL_STOP_LOCALS = frozenset(
    "look looking arrive arrived meet meeting me us him her them it this that is was be "
    "stay stayed work works worked me, here there home".split()
)

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.?"
_TLD = (
    r"(?:com|org|net|edu|gov|mil|int|io|co|ai|app|dev|info|biz|me|us|uk|de|fr|es|it|nl|pl|se|ch|at|be|eu|ca|au|in"
    r"|jp|cn|br|ru)"
)
_SPACE = r"[ \t]"
#: "[at]", "(at)", "{at}", "<at>" with optional spaces, or " at " between spaces.
_SPELLED_AT = (
    rf"(?:{_SPACE}{{0,3}}[\[\(\{{<]{_SPACE}{{0,2}}(?:at|AT|At|@){_SPACE}{{0,2}}[\]\)\}}>]{_SPACE}{{0,3}}"
    rf"|{_SPACE}{{1,3}}(?:at|AT){_SPACE}{{1,3}})"
)
_SPELLED_DOT = (
    rf"(?:{_SPACE}{{0,3}}[\[\(\{{<]{_SPACE}{{0,2}}(?:dot|DOT|Dot|\.){_SPACE}{{0,2}}[\]\)\}}>]{_SPACE}{{0,3}}"
    rf"|{_SPACE}{{1,3}}(?:dot|DOT){_SPACE}{{1,3}})"
)
_AT = rf"(?:{_SPELLED_AT[3:-1]}|{_SPACE}{{0,3}}@{_SPACE}{{0,3}})"
_DOT = rf"(?:{_SPELLED_DOT[3:-1]}|\.)"
#: A local part that may itself be spelled out: "jane dot doe".
_LOCAL = rf"[A-Za-z0-9._+-]{{1,40}}(?:{_SPELLED_DOT}[A-Za-z0-9_+-]{{1,40}}){{0,3}}"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

_SSN_CTX = ("ssn", "social security", "social sec", "ss#", "ss #", "ssn#")
_PHONE_CTX = ("phone", "tel", "telephone", "mobile", "cell", "call", "fax", "whatsapp", "contact", "reach",
              "tél", "téléphone", "portable", "teléfono", "telefono", "móvil", "movil", "cellulare", "handy",
              "mobil", "erreichbar", "telefon", "numéro", "número", "numero", "sms", "text")
_CARD_CTX = ("card", "visa", "mastercard", "amex", "credit", "debit", "cc", "pan", "payment")

BUILTIN: tuple[PatternSpec, ...] = (
    # --- contact ---------------------------------------------------------------
    PatternSpec("email", "EMAIL_ADDRESS",
                r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b", 0.95),
    PatternSpec("email_spelled_at", "EMAIL_ADDRESS",
                rf"\b{_LOCAL}{_SPELLED_AT}[A-Za-z0-9-]{{1,63}}(?:{_DOT}[A-Za-z0-9-]{{1,63}}){{0,3}}{_DOT}{_TLD}\b",
                0.8, validator=_spelled_email, validator_name="spelled-out address", caseless=True),
    PatternSpec("email_spelled_dot", "EMAIL_ADDRESS",
                rf"\b{_LOCAL}{_AT}[A-Za-z0-9-]{{1,63}}(?:{_DOT}[A-Za-z0-9-]{{1,63}}){{0,3}}{_SPELLED_DOT}{_TLD}\b",
                0.8, validator=_spelled_email, validator_name="spelled-out address", caseless=True),
    PatternSpec("email_spaced", "EMAIL_ADDRESS",
                rf"\b[A-Za-z0-9._+-]{{1,40}}[ \t]{{0,3}}@[ \t]{{0,3}}[A-Za-z0-9-]{{1,63}}"
                rf"(?:[ \t]{{0,3}}\.[ \t]{{0,3}}[A-Za-z0-9-]{{1,63}}){{0,3}}[ \t]{{0,3}}\.[ \t]{{0,3}}{_TLD}\b",
                0.85, caseless=True),
    PatternSpec("phone_intl", "PHONE_NUMBER",
                r"(?:\+\d{1,3}|\(\+\d{1,3}\))[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{2,5}){1,4}\b", 0.75,
                validator=v.phone, validator_name="phonenumbers", context=_PHONE_CTX, trim=True),
    PatternSpec("phone_nanp", "PHONE_NUMBER",
                r"(?:\b1[ .-])?(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b", 0.65,
                validator=v.phone, validator_name="phonenumbers", context=_PHONE_CTX,
                negative=NUMBER_NEGATIVE, standalone=True),
    PatternSpec("phone_national", "PHONE_NUMBER",
                r"\b0\d{1,4}[ /-]\d{3,8}(?:[ -]\d{2,5}){0,2}\b", 0.35,
                validator=v.phone, validator_name="phonenumbers", context=_PHONE_CTX,
                require_context=True, standalone=True),
    PatternSpec("phone_pairs", "PHONE_NUMBER", r"\b0\d(?:[ .-]\d{2}){4}\b", 0.6,
                validator=v.phone, validator_name="phonenumbers", context=_PHONE_CTX,
                negative=NUMBER_NEGATIVE, standalone=True),
    PatternSpec("ipv4", "IP_ADDRESS", rf"\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b", 0.75,
                validator=v.ipv4, validator_name="ipaddress",
                context=("ip", "host", "server", "src", "dst", "addr", "address"),
                negative=("version", "build", "release", "v", "oid"), standalone=True),
    PatternSpec("ipv6", "IP_ADDRESS", r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b", 0.75,
                validator=v.ipv6, validator_name="ipaddress"),
    # --- government ids ----------------------------------------------------------
    PatternSpec("us_ssn", "US_SSN", r"\b\d{3}[ .-]{1,3}\d{2}[ .-]{1,3}\d{4}\b", 0.65, validator=v.us_ssn,
                validator_name="SSA rules", context=_SSN_CTX, negative=NUMBER_NEGATIVE, standalone=True),
    PatternSpec("us_ssn_bare", "US_SSN", r"\b\d{9}\b", 0.3, validator=v.us_ssn, validator_name="SSA rules",
                context=_SSN_CTX, require_context=True, standalone=True),
    PatternSpec("us_itin", "US_ITIN", r"\b9\d{2}[ .-]?\d{2}[ .-]?\d{4}\b", 0.55, validator=v.us_itin,
                validator_name="ITIN ranges", context=("itin", "taxpayer", "tax id", "tin"),
                negative=NUMBER_NEGATIVE, standalone=True),
    PatternSpec("us_passport", "US_PASSPORT", r"\b[A-Z]?\d{8,9}\b", 0.3,
                context=("passport",), require_context=True, window_before=32, standalone=True),
    PatternSpec("npi", "NPI", r"\b[12]\d{9}\b", 0.35, validator=v.npi, validator_name="NPI Luhn",
                context=("npi", "provider", "prescriber", "national provider"), standalone=True),
    PatternSpec("uk_nhs", "UK_NHS", r"\b\d{3}[ -]?\d{3}[ -]?\d{4}\b", 0.4, validator=v.uk_nhs,
                validator_name="NHS mod 11", context=("nhs", "nhs number", "nhs no"), standalone=True),
    PatternSpec("mrn", "MEDICAL_RECORD_NUMBER", r"\b[A-Z0-9]{0,4}-?\d[A-Z0-9]{4,12}\b", 0.3,
                validator=_mrn, validator_name="five or more digits",
                context=("mrn", "medical record", "mr#", "mr #", "mr no", "chart", "patient id",
                         "record number", "record no", "hospital number", "mrn#"),
                require_context=True, window_before=28, window_after=0, standalone=True),
    PatternSpec("date_of_birth", "DATE_OF_BIRTH",
                rf"\b(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:19|20)?\d{{2}}|(?:19|20)\d{{2}}[/.-]\d{{1,2}}[/.-]\d{{1,2}}"
                rf"|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? (?:19|20)\d{{2}}"
                rf"|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? (?:19|20)\d{{2}})\b",
                0.3, context=("dob", "d.o.b", "date of birth", "birth date", "birthdate", "born", "birthday",
                              "geboren", "geburtsdatum", "né le", "née le", "fecha de nacimiento", "nacido",
                              "data di nascita", "nato"),
                require_context=True, window_before=32, window_after=0, caseless=True),
    # --- EU national ids and tax numbers (checksums from python-stdnum) -----------
    PatternSpec("de_idnr", "TAX_ID", r"\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b", 0.4,
                validator=v.stdnum_validator("de.idnr"), validator_name="stdnum de.idnr",
                context=("steuer", "idnr", "steuer-id", "tax id", "identifikationsnummer", "tin"), standalone=True),
    PatternSpec("fr_nir", "NATIONAL_ID", r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b", 0.65,
                validator=v.stdnum_validator("fr.nir"), validator_name="stdnum fr.nir",
                context=("nir", "insee", "sécurité sociale", "securite sociale", "numéro de sécu"), standalone=True),
    PatternSpec("es_dni", "NATIONAL_ID", r"\b\d{8}[ -]?[A-Za-z]\b", 0.6,
                validator=v.stdnum_validator("es.dni"), validator_name="stdnum es.dni",
                context=("dni", "nif", "documento"), standalone=True),
    PatternSpec("es_nie", "NATIONAL_ID", r"\b[XYZxyz][ -]?\d{7}[ -]?[A-Za-z]\b", 0.7,
                validator=v.stdnum_validator("es.nie"), validator_name="stdnum es.nie", context=("nie",)),
    PatternSpec("it_cf", "TAX_ID", r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b", 0.85,
                validator=v.stdnum_validator("it.codicefiscale"), validator_name="stdnum it.codicefiscale",
                context=("codice fiscale", "cf")),
    PatternSpec("nl_bsn", "NATIONAL_ID", r"\b\d{4}\.?\d{2}\.?\d{3}\b", 0.3,
                validator=v.stdnum_validator("nl.bsn"), validator_name="stdnum nl.bsn",
                context=("bsn", "burgerservicenummer", "sofinummer"), standalone=True),
    PatternSpec("pl_pesel", "NATIONAL_ID", r"\b\d{11}\b", 0.35,
                validator=v.stdnum_validator("pl.pesel"), validator_name="stdnum pl.pesel",
                context=("pesel",), standalone=True),
    PatternSpec("se_pnr", "NATIONAL_ID", r"\b(?:19|20)?\d{6}[-+]\d{4}\b", 0.55,
                validator=v.stdnum_validator("se.personnummer"), validator_name="stdnum se.personnummer",
                context=("personnummer", "personnr"), standalone=True),
    PatternSpec("dk_cpr", "NATIONAL_ID", r"\b\d{6}-\d{4}\b", 0.35,
                validator=v.stdnum_validator("dk.cpr"), validator_name="stdnum dk.cpr",
                context=("cpr", "cpr-nr", "personnummer"), standalone=True),
    PatternSpec("fi_hetu", "NATIONAL_ID", r"\b\d{6}[-+A]\d{3}[0-9A-Y]\b", 0.7,
                validator=v.stdnum_validator("fi.hetu"), validator_name="stdnum fi.hetu",
                context=("henkilötunnus", "hetu")),
    PatternSpec("pt_nif", "TAX_ID", r"\b\d{9}\b", 0.3, validator=v.stdnum_validator("pt.nif"),
                validator_name="stdnum pt.nif", context=("nif", "contribuinte"), require_context=True,
                standalone=True),
    PatternSpec("eu_vat", "TAX_ID",
                r"\b(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)"
                r" ?[0-9A-Z]{2}[0-9A-Z .]{6,12}[0-9A-Z]\b", 0.75,
                validator=v.stdnum_validator("eu.vat"), validator_name="stdnum eu.vat", trim=True,
                context=("vat", "ust-idnr", "tva", "iva", "btw")),
    # --- payment and banking ---------------------------------------------------------
    PatternSpec("credit_card", "CREDIT_CARD", r"\b\d(?:[ .-]{0,3}\d){12,18}\b", 0.9, validator=v.credit_card,
                validator_name="Luhn and card prefix", context=_CARD_CTX, negative=NUMBER_NEGATIVE,
                trim=True, standalone=True, prefilter=r"\b\d[\d .-]{11,}\d\b"),
    PatternSpec("iban", "IBAN_CODE", r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b", 0.95,
                validator=v.iban, validator_name="IBAN mod 97", trim=True,
                context=("iban", "account", "bank", "beneficiary")),
    PatternSpec("aba", "ABA_ROUTING_NUMBER", r"\b\d{9}\b", 0.3, validator=v.aba_routing,
                validator_name="ABA checksum", context=("routing", "aba", "rtn", "transit", "routing number"),
                require_context=True, standalone=True),
    PatternSpec("us_bank", "US_BANK_NUMBER", r"\b\d{8,17}\b", 0.3,
                context=("account number", "account no", "acct", "bank account", "checking", "savings", "account",
                         "account #", "a/c"),
                require_context=True, window_before=36, standalone=True),
    PatternSpec("btc_base58", "CRYPTO", r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b", 0.9,
                validator=v.bitcoin_base58, validator_name="Base58Check"),
    PatternSpec("btc_bech32", "CRYPTO", r"\b(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71}\b", 0.9,
                validator=v.bitcoin_bech32, validator_name="bech32 checksum"),
    PatternSpec("eth", "CRYPTO", r"\b0x[0-9a-fA-F]{40}\b", 0.7, validator=v.ethereum, validator_name="hex address",
                context=("wallet", "eth", "ether", "address", "send", "usdt", "crypto")),
    # --- places ---------------------------------------------------------------------
    PatternSpec("street_en", "LOCATION",
                r"\b\d{1,5}[A-Za-z]?(?: [A-Z][A-Za-z'-]{1,20}| [A-Z]\.|(?: [NSEW]\.?)){1,4} "
                r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
                r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Row|Trail|Loop|Alley|Plaza)\b\.?"
                r"(?:,? (?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.? ?#?[A-Za-z0-9-]{1,6})?"
                r"(?:, [A-Z][A-Za-z]{1,20}(?: [A-Z][A-Za-z]{1,20}){0,2})?(?:,? [A-Z]{2})?(?: \d{5}(?:-\d{4})?)?",
                0.75, context=("address", "lives", "ship", "deliver", "mail to", "located", "residence")),
    PatternSpec("street_de", "LOCATION",
                r"\b[A-ZÄÖÜ][a-zäöüß]{2,30}(?:straße|strasse|str\.|weg|platz|gasse|allee|ring|damm|ufer)"
                r" \d{1,4}[a-z]?(?:, ?\d{5} [A-ZÄÖÜ][a-zäöüß]{1,30})?", 0.75,
                context=("adresse", "anschrift", "wohnhaft", "address")),
    PatternSpec("street_romance", "LOCATION",
                r"\b\d{1,4}(?: ?bis)?,? (?:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai|calle|avenida|"
                r"plaza|paseo|via|viale|piazza|corso)(?: [A-Za-zÀ-ÿ'-]{1,20}){1,5}"
                r"(?:, ?\d{5} [A-ZÀ-Ý][a-zà-ÿ-]{1,30})?",
                0.7, caseless=True, context=("adresse", "dirección", "direccion", "indirizzo", "address")),
    PatternSpec("street_romance_name_first", "LOCATION",
                r"\b(?:Calle|Avenida|Via|Viale|Piazza|Corso|Plaza|Paseo|Carrer|Rua)(?: [A-Za-zÀ-ÿ'-]{1,20}){1,4},? "
                r"\d{1,4}(?:, ?\d{5} [A-ZÀ-Ý][a-zà-ÿ-]{1,30})?", 0.7,
                context=("dirección", "direccion", "indirizzo", "address")),
    PatternSpec("uk_postcode_addr", "LOCATION",
                r"\b\d{1,4} [A-Z][a-z]{2,20} (?:Street|Road|Lane|Avenue|Close|Gardens|Grove|Hill|Mews)"
                r", [A-Z][a-z]{2,20},? [A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b", 0.85),
    # --- credentials ----------------------------------------------------------------
    PatternSpec("aws_access_key", "SECRET",
                r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b", 0.95,
                detector="secret"),
    PatternSpec("aws_secret_key", "SECRET",
                r"(?:aws|AWS)[A-Za-z0-9_ .-]{0,20}(?:secret|SECRET|Secret)[A-Za-z0-9_ .-]{0,20}"
                r"[\"']?[ \t]{0,3}[:=][ \t]{0,3}"
                r"[\"']?(?P<v>[A-Za-z0-9/+]{40})\b", 0.95, detector="secret"),
    PatternSpec("github_token", "SECRET", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b", 0.97, detector="secret"),
    PatternSpec("github_pat", "SECRET", r"\bgithub_pat_[A-Za-z0-9_]{50,255}\b", 0.97, detector="secret"),
    PatternSpec("gitlab_token", "SECRET", r"\bgl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,64}", 0.95,
                detector="secret"),
    PatternSpec("slack_token", "SECRET", r"\bxox[abposre]-[A-Za-z0-9-]{10,250}", 0.95, detector="secret"),
    PatternSpec("slack_webhook", "SECRET", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_]{20,120}", 0.95,
                detector="secret"),
    PatternSpec("stripe_key", "SECRET", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,255}\b", 0.95, detector="secret"),
    PatternSpec("openai_key", "SECRET", r"\bsk-(?:proj-|svcacct-|admin-|ant-api\d\d-|ant-)?[A-Za-z0-9_-]{20,255}",
                0.9, detector="secret"),
    PatternSpec("google_api_key", "SECRET", r"\bAIza[0-9A-Za-z_-]{35}", 0.95, detector="secret"),
    PatternSpec("google_oauth", "SECRET", r"\bya29\.[0-9A-Za-z_-]{20,500}", 0.9, detector="secret"),
    PatternSpec("jwt", "SECRET", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0.95,
                validator=_jwt, validator_name="JWT header", detector="secret"),
    PatternSpec("private_key", "SECRET",
                r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY( BLOCK)?-----[A-Za-z0-9+/=\s:,-]*(?:-----END[A-Z0-9 ]{0,30}"
                r"PRIVATE KEY( BLOCK)?-----)?", 0.99, detector="secret"),
    PatternSpec("azure_account_key", "SECRET", r"(?:AccountKey|SharedAccessKey)=(?P<v>[A-Za-z0-9+/=]{30,120})", 0.95,
                detector="secret"),
    PatternSpec("twilio_key", "SECRET", r"\bSK[0-9a-fA-F]{32}\b", 0.8, detector="secret"),
    PatternSpec("sendgrid_key", "SECRET", r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}", 0.95,
                detector="secret"),
    PatternSpec("npm_token", "SECRET", r"\bnpm_[A-Za-z0-9]{36}\b", 0.95, detector="secret"),
    PatternSpec("pypi_token", "SECRET", r"\bpypi-AgE[A-Za-z0-9_-]{50,}", 0.95, detector="secret"),
    PatternSpec("hf_token", "SECRET", r"\bhf_[A-Za-z0-9]{30,40}\b", 0.9, detector="secret"),
    PatternSpec("shopify_token", "SECRET", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b", 0.95, detector="secret"),
    PatternSpec("digitalocean_token", "SECRET", r"\bdo[por]_v1_[a-f0-9]{64}\b", 0.95, detector="secret"),
    PatternSpec("mailgun_key", "SECRET", r"\bkey-[0-9a-f]{32}\b", 0.8, detector="secret"),
    PatternSpec("bearer_token", "SECRET",
                r"\b(?:[Bb]earer|BEARER|[Tt]oken|TOKEN)[ \t]{1,3}(?P<v>[A-Za-z0-9._~+/-]{20,2000}=*)", 0.8,
                detector="secret", validator=_secret_value, validator_name="not a placeholder"),
    PatternSpec("basic_auth", "SECRET", r"\b[Bb]asic[ \t]{1,3}(?P<v>[A-Za-z0-9+/]{12,500}={0,2})", 0.7,
                context=("authorization",), detector="secret", validator=_secret_value,
                validator_name="not a placeholder"),
    PatternSpec("connection_string_password", "SECRET",
                r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@\"']{0,64}:(?P<v>[^\s@/\"']{1,128})@[A-Za-z0-9.\[\]-]{1,253}",
                0.95, detector="secret", validator=_url_password, validator_name="not a placeholder"),
    PatternSpec("password_assignment", "SECRET",
                r"(?:[A-Za-z0-9]{1,30}[_.-])?(?:pass|passwd|password|pwd|passphrase|secret|token|api[_-]?key|apikey|"
                r"access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?token|credentials?)"
                r"(?:[_.-][A-Za-z0-9]{1,30})?[\"']?[ \t]{0,3}(?:=|:|:=|=>)[ \t]{0,3}[\"']?(?P<v>[^\s\"'`,;)]{6,200})",
                0.8, caseless=True, detector="secret", validator=_secret_value, validator_name="not a placeholder"),
    PatternSpec("password_words", "SECRET",
                r"\b(?:password|passwort|mot de passe|contraseña|passcode|pwd|api[ _-]?key|access key|token|secret)"
                r"(?: is| ist| est| es)?"
                r"[ \t]{0,3}:?[ \t]{1,3}"
                r"(?P<v>[^\s\"'`,;]{6,128})", 0.75, caseless=True, detector="secret", validator=_secret_value,
                validator_name="not a placeholder"),
)
