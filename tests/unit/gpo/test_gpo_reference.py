"""Our Backup.xml and bkupInfo.xml have the namespaces and structure of real GPMC backups.

The real files are the NSA Secure Host Baseline backup quoted in ``../shared/reference/gpo_audit.md``:
section 1.3 (bkupInfo.xml, verbatim) and section 1.4 (Backup.xml, with the SecurityGroups,
SecurityDescriptor and SourceExpandedPath values trimmed). They are read from there at test time.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from procaudit.gpo.render import BACKUP_XML, BKUPINFO_XML, GpoIds, machine_extension_guids, render_files
from procaudit.gpo.settings import GpoSettings

IDS = GpoIds(gpo_guid=uuid.UUID(int=1), backup_id=uuid.UUID(int=2))
WHEN = datetime(2024, 5, 1, 12, 0, 0)
GPO_NS = "http://www.microsoft.com/GroupPolicy/GPOOperations"
BKP = "{" + GPO_NS + "}"


def reference_xml(shared: Path, heading: str) -> etree._Element:
    """The first ```xml block after the markdown heading that starts with ``heading``."""
    text = (shared / "reference" / "gpo_audit.md").read_text(encoding="utf-8")
    start = text.index("\n" + heading)
    block = re.search(r"```xml\n(.*?)```", text[start:], re.S)
    assert block is not None, heading
    return etree.fromstring(block.group(1).strip().encode("utf-8"))


@pytest.fixture(scope="module")
def real_bkupinfo(shared_dir: Path) -> etree._Element:
    return reference_xml(shared_dir, "### 1.3 Real bkupInfo.xml")


@pytest.fixture(scope="module")
def real_backup(shared_dir: Path) -> etree._Element:
    return reference_xml(shared_dir, "### 1.4 Real Backup.xml")


def ours(parts: tuple[str, ...], **settings: object) -> etree._Element:
    return etree.fromstring(render_files(GpoSettings.model_validate(settings), IDS, WHEN)[parts])


def tags(element: etree._Element) -> list[str]:
    return [child.tag for child in element if isinstance(child.tag, str)]


def test_bkupinfo_has_the_real_structure(real_bkupinfo: etree._Element) -> None:
    mine = ours(BKUPINFO_XML)
    assert mine.tag == real_bkupinfo.tag == "{http://www.microsoft.com/GroupPolicy/GPOOperations/Manifest}BackupInst"
    assert mine.nsmap == real_bkupinfo.nsmap
    assert tags(mine) == tags(real_bkupinfo)
    for mine_child, real_child in zip(mine, real_bkupinfo, strict=True):
        assert len(mine_child) == len(real_child) == 0  # text only (CDATA), no nested elements


def test_bkupinfo_id_formats_match_the_real_one(real_bkupinfo: etree._Element) -> None:
    guid = re.compile(r"^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$")
    mine = ours(BKUPINFO_XML)
    for name in ("GPOGuid", "ID"):
        real_value = real_bkupinfo.findtext("{*}" + name)
        my_value = mine.findtext("{*}" + name)
        assert real_value is not None and guid.match(real_value), name
        assert my_value is not None and guid.match(my_value), name
    real_time, my_time = real_bkupinfo.findtext("{*}BackupTime"), mine.findtext("{*}BackupTime")
    assert real_time is not None and my_time is not None
    assert datetime.strptime(real_time, "%Y-%m-%dT%H:%M:%S")
    assert datetime.strptime(my_time, "%Y-%m-%dT%H:%M:%S") == WHEN


def test_backup_xml_root_and_namespaces_match(real_backup: etree._Element) -> None:
    mine = ours(BACKUP_XML)
    assert mine.tag == real_backup.tag == BKP + "GroupPolicyBackupScheme"
    assert mine.nsmap == real_backup.nsmap == {None: GPO_NS, "bkp": GPO_NS}
    assert dict(mine.attrib) == dict(real_backup.attrib)


def test_backup_xml_element_order_matches(real_backup: etree._Element) -> None:
    mine = ours(BACKUP_XML)
    assert tags(mine) == tags(real_backup) == [BKP + "GroupPolicyObject"]

    def collapsed(element: etree._Element) -> list[str]:
        names = tags(element)
        return [name for i, name in enumerate(names) if i == 0 or name != names[i - 1]]

    mine_gpo, real_gpo = mine[0], real_backup[0]
    assert collapsed(mine_gpo) == collapsed(real_gpo)
    mine_core = mine_gpo.find(BKP + "GroupPolicyCoreSettings")
    real_core = real_gpo.find(BKP + "GroupPolicyCoreSettings")
    assert mine_core is not None and real_core is not None
    assert tags(mine_core) == tags(real_core)


def test_backup_xml_extensions_and_files_are_ones_gpmc_writes(real_backup: etree._Element) -> None:
    def extensions(root: etree._Element) -> list[tuple[str | None, str | None]]:
        return [(e.get(BKP + "ID"), e.get(BKP + "DescName")) for e in root.iter(BKP + "GroupPolicyExtension")]

    mine = ours(BACKUP_XML)
    real_extensions = extensions(real_backup)
    mine_extensions = extensions(mine)
    assert mine_extensions == [ext for ext in real_extensions if ext in mine_extensions]  # same order
    assert len(mine_extensions) == 3

    for extension in mine.iter(BKP + "GroupPolicyExtension"):
        real_extension = real_backup.find(f".//{BKP}GroupPolicyExtension[@{BKP}ID='{extension.get(BKP + 'ID')}']")
        assert real_extension is not None
        real_objects = {
            (obj.tag, obj.get(BKP + "Path")): dict(obj.attrib) for obj in real_extension if isinstance(obj.tag, str)
        }
        for obj in extension:
            real_attrs = real_objects.get((obj.tag, obj.get(BKP + "Path")))
            assert real_attrs is not None, (obj.tag, obj.get(BKP + "Path"))
            # our attributes are the real ones minus bkp:SourceExpandedPath (the source domain's SYSVOL path)
            real_attrs.pop(BKP + "SourceExpandedPath", None)
            assert dict(obj.attrib) == real_attrs


def test_our_extension_pairs_are_in_the_real_list_and_sorted_the_same_way(real_backup: etree._Element) -> None:
    real_text = real_backup.findtext(f".//{BKP}MachineExtensionGuids")
    assert real_text is not None
    real_pairs = re.findall(r"\[([^\]]*)\]", real_text)
    assert len(real_pairs) == 7
    # Re-sorting the real pairs from a shuffled order reproduces GPMC's string exactly.
    table = {pair[:38]: re.findall(r"\{[^}]*\}", pair[38:]) for pair in real_pairs}
    shuffled = list(table.items())
    random.Random(4688).shuffle(shuffled)
    assert machine_extension_guids(dict(shuffled)) == real_text
    mine_text = ours(BACKUP_XML).findtext(f".//{BKP}MachineExtensionGuids")
    assert mine_text is not None
    assert set(re.findall(r"\[([^\]]*)\]", mine_text)) <= set(real_pairs)
