"""docs/hyperswitch.md holds the rules the code holds: every tag and every variant."""

from __future__ import annotations

import subprocess
import sys

from drainer.db.dialects.describe import describe
from drainer.db.dialects.hyperswitch import ALIASES, DIALECT
from tests.conftest import ROOT

DOC = ROOT / "docs" / "hyperswitch.md"
BEGIN = "<!-- BEGIN generated: drainer dialect hyperswitch -->\n"
END = "<!-- END generated -->"


def _generated_section() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)]


def test_the_doc_lists_what_drainer_dialect_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "drainer", "dialect", "hyperswitch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == describe(DIALECT)
    assert _generated_section() == printed, "refresh docs/hyperswitch.md from `drainer dialect`"


def test_every_tag_and_variant_is_named() -> None:
    section = _generated_section()
    for tag in ALIASES:
        assert f"`{tag}`" in section
    for union in DIALECT.updates.values():
        assert union.variants, f"{union.enum} has no variants"
        for variant in union.variants:
            assert f"| `{variant.name}` |" in section, f"{union.enum}::{variant.name}"


def test_an_unknown_dialect_is_refused_with_a_reason() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "drainer", "dialect", "nosuch"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "dialect 'nosuch': expected a built-in name (hyperswitch)" in proc.stderr
