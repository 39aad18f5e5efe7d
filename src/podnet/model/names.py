"""The API server's syntax rules for names, label keys and values, and port names.

Reference: k8s.io/apimachinery/pkg/util/validation (IsQualifiedName, IsValidLabelValue,
IsDNS1123Label, IsDNS1123Subdomain, IsValidPortName).
"""

from __future__ import annotations

import re

_QNAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(rf"^{_QNAME_PART}$")
_LABEL_VALUE_RE = re.compile(rf"^({_QNAME_PART})?$")
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER_RE = re.compile(r"[a-z]")


def check_label_key(key: str) -> str:
    """A label key is an optional DNS subdomain prefix and '/', then a name of at most 63."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        raise ValueError(f"invalid label key {key!r}: prefix part must be non-empty")
    if slash:
        check_dns_subdomain(prefix, what=f"label key {key!r} prefix")
    if not name:
        raise ValueError(f"invalid label key {key!r}: name part must be non-empty")
    if len(name) > 63:
        raise ValueError(f"invalid label key {key!r}: name part must be no more than 63 characters")
    if not _QNAME_RE.match(name):
        raise ValueError(
            f"invalid label key {key!r}: name part must consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"invalid label value {value!r}: must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"invalid label value {value!r}: must be empty or consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return value


def check_dns_label(name: str, what: str = "name") -> str:
    if len(name) > 63 or not _DNS1123_LABEL_RE.match(name):
        raise ValueError(
            f"invalid {what} {name!r}: must be a DNS-1123 label (at most 63 lowercase "
            "alphanumeric characters or '-', starting and ending with an alphanumeric character)"
        )
    return name


def check_dns_subdomain(name: str, what: str = "name") -> str:
    if len(name) > 253 or not _DNS1123_SUBDOMAIN_RE.match(name):
        raise ValueError(
            f"invalid {what} {name!r}: must be a DNS-1123 subdomain (lowercase alphanumeric "
            "characters, '-' or '.', starting and ending with an alphanumeric character)"
        )
    return name


def check_port_name(name: str) -> str:
    """IANA_SVC_NAME (RFC 6335): 1-15 of [-a-z0-9], a letter, no '--', no '-' at either end."""
    if not 1 <= len(name) <= 15:
        raise ValueError(f"invalid port name {name!r}: must be no more than 15 characters")
    if not _PORT_NAME_CHARS_RE.match(name):
        raise ValueError(
            f"invalid port name {name!r}: must contain only lowercase alphanumeric "
            "characters or '-'"
        )
    if not _HAS_LETTER_RE.search(name):
        raise ValueError(f"invalid port name {name!r}: must contain at least one letter (a-z)")
    if "--" in name:
        raise ValueError(f"invalid port name {name!r}: must not contain consecutive hyphens")
    if name[0] == "-" or name[-1] == "-":
        raise ValueError(f"invalid port name {name!r}: must not begin or end with a hyphen")
    return name


def check_port_number(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port}: must be between 1 and 65535, inclusive")
    return port
