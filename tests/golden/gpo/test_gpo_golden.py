"""The rendered GPO backup is byte-identical to the reviewed golden copy in this folder.

To change the output on purpose: ``PYTHONPATH=src python tests/golden/gpo/regen_golden.py`` (see README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gpo_golden_cases import BACKUP_TIME, CASES, GOLDEN_DIR

from procaudit.gpo.render import render_gpo_backup


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_backup_matches_golden(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    golden = GOLDEN_DIR / name
    assert golden.is_dir(), f"golden case {name} missing; run tests/golden/gpo/regen_golden.py"
    render_gpo_backup(case.settings, tmp_path / name, ids=case.ids, backup_time=BACKUP_TIME)
    rendered, expected = tree(tmp_path / name), tree(golden)
    assert sorted(rendered) == sorted(expected), "file set differs from the golden copy"
    for path, data in expected.items():
        assert rendered[path] == data, f"{name}/{path} differs from the golden copy (regen_golden.py if intended)"


def test_golden_cases_have_the_expected_shape() -> None:
    # Guards the golden copies themselves: five files per case, one backup folder named by its id.
    for name, case in CASES.items():
        folders = [p.name for p in (GOLDEN_DIR / name).iterdir()]
        assert folders == ["{" + str(case.ids.backup_id).upper() + "}"], name
        assert len(tree(GOLDEN_DIR / name)) == 5, name
