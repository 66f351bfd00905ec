"""Validation and normalisation of domain names given by users."""

from __future__ import annotations

import re

import dns.name

from o365dkim.errors import InvalidInputError

_MAX_LABEL = 63
_MAX_NAME = 253
# LDH rule (RFC 1123 section 2.1) on the IDNA (A-label) form of each label.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SELECTORS = ("selector1", "selector2")


def normalize_domain(value: str) -> str:
    """Return the lower-case IDNA form of a user-supplied domain, or raise InvalidInputError.

    Uppercase and one final dot are accepted; Unicode names become their A-label form.
    Spaces, shell or PowerShell metacharacters, empty labels and labels over 63
    characters are rejected with a message naming the value and the rule.
    """
    quoted = repr(value)
    if value.strip() == "":
        raise InvalidInputError(
            f"Invalid domain {quoted}: the name is empty. Give a domain such as contoso.com."
        )
    if any(ch.isspace() for ch in value):
        raise InvalidInputError(
            f"Invalid domain {quoted}: spaces, tabs and line breaks are not allowed in a "
            "domain name."
        )

    name = value[:-1] if value.endswith(".") else value
    ascii_name = _to_ascii(name, quoted)
    _check_characters(ascii_name, quoted)
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidInputError(
            f"Invalid domain {quoted}: a mail domain needs at least two labels, "
            "such as contoso.com."
        )
    for label in labels:
        _check_label(label, quoted)
    if len(ascii_name) > _MAX_NAME:
        raise InvalidInputError(
            f"Invalid domain {quoted}: the name is {len(ascii_name)} characters, over the "
            f"limit of {_MAX_NAME}."
        )
    if labels[-1].isdigit():
        # RFC 3696 section 2: a top-level domain is never all-numeric.
        raise InvalidInputError(
            f"Invalid domain {quoted}: the last label '{labels[-1]}' is all digits, which no "
            "top-level domain is."
        )
    return ascii_name


def _check_characters(name: str, quoted: str) -> None:
    bad = sorted({ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in ".-"))})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidInputError(
            f"Invalid domain {quoted}: {shown} is not allowed, because a domain name may "
            "contain only letters, digits, hyphens and dots."
        )


def require_custom_domain(domain: str) -> None:
    """Raise InvalidInputError for a tenant's initial domain, which Microsoft signs itself."""
    if domain.endswith((".onmicrosoft.com", ".onmicrosoft.us")) and domain.count(".") == 2:
        raise InvalidInputError(
            f"Invalid domain '{domain}': Microsoft signs the initial onmicrosoft domain with its "
            "own selectors, so there is nothing to publish. Give a custom domain."
        )


def selector_hosts(domain: str) -> tuple[str, str]:
    """Return the two DKIM selector host names that Microsoft 365 uses for a domain."""
    return (f"{_SELECTORS[0]}._domainkey.{domain}", f"{_SELECTORS[1]}._domainkey.{domain}")


def _to_ascii(name: str, quoted: str) -> str:
    if name.isascii():
        return name.lower()
    try:
        return dns.name.from_unicode(name).to_text(omit_final_dot=True).lower()
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as err:
        raise InvalidInputError(f"Invalid domain {quoted}: {err}") from err
    except Exception as err:  # the IDNA codec raises several unrelated types
        raise InvalidInputError(
            f"Invalid domain {quoted}: it cannot be converted to IDNA ({err})."
        ) from err


def _check_label(label: str, quoted: str) -> None:
    if label == "":
        raise InvalidInputError(
            f"Invalid domain {quoted}: it contains an empty label "
            "(two dots in a row or a leading dot)."
        )
    if len(label) > _MAX_LABEL:
        raise InvalidInputError(
            f"Invalid domain {quoted}: the label '{label[:20]}...' is {len(label)} characters, "
            f"over the limit of {_MAX_LABEL}."
        )
    if label.startswith("xn--") and not _is_valid_a_label(label):
        raise InvalidInputError(
            f"Invalid domain {quoted}: the label '{label}' is not a valid IDNA A-label."
        )
    if not _LABEL.match(label):
        raise InvalidInputError(
            f"Invalid domain {quoted}: the label '{label}' may contain only letters, digits and "
            "hyphens, and may not start or end with a hyphen."
        )


def _is_valid_a_label(label: str) -> bool:
    """Return True when an ``xn--`` label decodes as IDNA 2008 (the idna package dnspython uses)."""
    import idna

    try:
        idna.decode(label)
    except idna.IDNAError:
        return False
    return True
