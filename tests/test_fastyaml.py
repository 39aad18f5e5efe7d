"""The yaml-rs fast path gives exactly what PyYAML's safe loader gives, or steps aside."""

from __future__ import annotations

import pytest
import yaml

from podnet.model.errors import InputError
from podnet.model.fastyaml import fast_documents
from podnet.model.manifests import parse_documents

# Scalars that YAML 1.1 (PyYAML) and 1.2 (yaml-rs) read apart, or might: never fast.
DIFFERING = [
    "yes", "No", "ON", "off", "0755", "0o17", "1:20", "1_000", "1e3", "1.0e3", "0x1F",
    "-0x1F", "2024-01-01", "2024-01-01T10:00:00Z", "<<", "=", "0b101", "+0.5e-3",
]  # fmt: skip
# Scalars both read alike, which the fast path must keep.
ALIKE = [
    "y", "n", "true", "False", "null", "~", "80", "-3", "0", "0.5", "1.", ".5", "web",
    "10.244.0.5", "10.244.0.0/16", "a:b", "8080/TCP", ".inf", "-.Inf", ".nan",
]  # fmt: skip


def pyyaml(text: str) -> list[object]:
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


def shapes(scalar: str) -> list[str]:
    return [
        f"a: {scalar}\n",
        f"a:\n- {scalar}\n",
        f"a: [{scalar}, x]\n",
        f"a: {{k: {scalar}}}\n",
        f"{scalar}: 1\n",
        f"- {scalar}: 1\n",
        f"a: {{{scalar}: 1}}\n",
        f"---\nb: 1\n---\nc: [x, {scalar}]\n",
    ]


@pytest.mark.parametrize("scalar", DIFFERING)
def test_scalars_the_schemas_read_apart_go_to_pyyaml(scalar: str) -> None:
    for text in shapes(scalar):
        assert fast_documents(text) is None, text
        try:
            expected = pyyaml(text)
        except yaml.YAMLError:  # `a: =` and `a: <<` are errors to PyYAML: reported as such
            with pytest.raises(InputError):
                parse_documents("x.yaml", text)
            continue
        assert parse_documents("x.yaml", text) == expected


@pytest.mark.parametrize("scalar", ALIKE)
def test_scalars_read_alike_take_the_fast_path(scalar: str) -> None:
    for i, text in enumerate(shapes(scalar)):
        fast = fast_documents(text)
        as_key = i in (4, 5, 6)  # a key that is not a string (True, 80, None) steps aside
        assert fast is not None or as_key, text
        if fast is not None:
            assert repr(fast) == repr(pyyaml(text)), text  # repr: nan equals itself


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "---\n",
        "a: 1\n---\n",
        "# c\n---\na: 1\n---\n- x\n- y\n",
        "- a\n- b\n",
        "a: |\n  line\n  two\n",
        "a: 'it''s'\nb: \"\\u00e9\"\n",
        "a: &x {k: 1}\nb: *x\n",
        "a: 1\na: 2\n",  # yaml-rs refuses duplicate keys; PyYAML keeps the last
        "%YAML 1.1\n---\na: yes\n",
        "a: 1\n...\n",
        "a: !!str 5\n",
        "a: [1, 2\nb: 3\n",  # invalid: PyYAML must report it, line and column
    ],
)
def test_stream_shapes_equal_pyyaml_or_step_aside(text: str) -> None:
    fast = fast_documents(text)
    if fast is not None:
        assert fast == pyyaml(text)


def test_a_list_document_is_one_document() -> None:
    text = "- a\n- b\n---\n- c\n"
    assert fast_documents(text) == [["a", "b"], ["c"]] == pyyaml(text)
