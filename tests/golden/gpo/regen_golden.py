"""Regenerate the golden GPO backups on purpose, after a deliberate change to the output.

    PYTHONPATH=src python tests/golden/gpo/regen_golden.py

Then review ``git diff tests/golden/gpo`` (binary files: compare with the Samba validator or
``decode_pol``) and commit the new files with the change that caused them.
"""

from __future__ import annotations

import shutil
import sys

from gpo_golden_cases import BACKUP_TIME, CASES, GOLDEN_DIR

from procaudit.gpo.render import render_gpo_backup


def main() -> int:
    for name, case in CASES.items():
        target = GOLDEN_DIR / name
        if target.exists():
            shutil.rmtree(target)
        backup = render_gpo_backup(case.settings, target, ids=case.ids, backup_time=BACKUP_TIME)
        print(f"{name}: {backup.backup_dir.relative_to(GOLDEN_DIR)} ({len(backup.files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
