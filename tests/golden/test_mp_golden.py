"""Golden file of the MP built from the shipped rules.

When a rule or the template changes on purpose, regenerate and review the diff:

    PROCAUDIT_REGEN_GOLDEN=1 PYTHONPATH=src pytest tests/golden
"""

from __future__ import annotations

import os
from pathlib import Path

from procaudit.detections import mpbuild
from procaudit.detections.rules import load_rules

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("procaudit_detections_mp.xml")


def test_mp_matches_golden() -> None:
    xml = mpbuild.build(
        load_rules(REPO / "detections"), mp_id="Procaudit.ProcessCreation.Detections", version="1.0.0.0"
    ).xml
    if os.environ.get("PROCAUDIT_REGEN_GOLDEN"):
        GOLDEN.write_text(xml, encoding="utf-8")
    assert GOLDEN.read_text(encoding="utf-8") == xml, "MP changed: regenerate with PROCAUDIT_REGEN_GOLDEN=1 and review"
    assert mpbuild.xsd_errors(GOLDEN.read_text(encoding="utf-8")) == []
