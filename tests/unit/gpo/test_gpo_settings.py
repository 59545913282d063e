"""GPO settings: names, domains, log sizes and where the size limits come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from procaudit.errors import UserInputError
from procaudit.gpo.settings import (
    DEFAULT_DISPLAY_NAME,
    PLACEHOLDER_DOMAIN,
    SECURITY_LOG_MAX_KB,
    SECURITY_LOG_MIN_KB,
    GpoSettings,
    GpoSettingsError,
    parse_log_size,
)


@pytest.mark.parametrize(
    ("text", "kb"),
    [
        ("196608KB", 196608),
        ("196608 kb", 196608),
        ("192MB", 196608),
        ("1GB", 1048576),
        ("1GiB", 1048576),
        ("1.5GB", 1572864),
        ("4GB", 4194304),
        ("1TB", 1073741824),
        (" 20MB ", 20480),
    ],
)
def test_parse_log_size(text: str, kb: int) -> None:
    assert parse_log_size(text) == kb


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("196608", "has no unit"),
        ("1 GBytes", "unknown unit"),
        ("1PB", "unknown unit"),
        ("-1GB", "is not a size"),
        ("GB", "is not a size"),
        ("", "is not a size"),
        ("0.3KB", "whole number of kilobytes"),
        ("1e3KB", "is not a size"),
    ],
)
def test_parse_log_size_rejects(text: str, message: str) -> None:
    with pytest.raises(GpoSettingsError, match=message):
        parse_log_size(text)


@pytest.mark.parametrize(
    ("log_size", "ok"),
    [
        ("20480KB", True),
        ("20479KB", False),
        ("20MB", True),
        ("1MB", False),
        ("2147483647KB", True),
        ("2147483648KB", False),
        ("2TB", False),  # 2 TB is 2147483648 KB, one more than the ADMX maximum
    ],
)
def test_log_size_range(log_size: str, ok: bool) -> None:
    if ok:
        assert GpoSettings.from_user(log_size=log_size).security_log_max_kb == parse_log_size(log_size)
    else:
        with pytest.raises(GpoSettingsError, match=r"--log-size: .* outside the range .* 20480 KB .* 2147483647 KB"):
            GpoSettings.from_user(log_size=log_size)


def test_log_size_limits_match_the_admx_text_in_a_real_gpo_report(shared_dir: Path) -> None:
    # The Microsoft Windows 10 1909 baseline's GPO report carries the ADMX explain text of
    # "Specify the maximum log file size (KB)" for the Security log.
    folder = shared_dir / "data" / "windows" / "02_gpresult_xml"
    (report,) = folder.glob("gporeport_msft_baseline_win10_1909_computer_*.utf16le.xml")
    root = etree.fromstring(report.read_bytes())
    explains = [
        policy.xpath("string(*[local-name()='Explain'])")
        for policy in root.iter("{*}Policy")
        if policy.xpath("string(*[local-name()='Category'])") == "Windows Components/Event Log Service/Security"
        and policy.xpath("string(*[local-name()='Name'])") == "Specify the maximum log file size (KB)"
    ]
    assert len(explains) == 1
    limits = [int(n) for n in re.findall(r"\((\d+) kilobytes\)", explains[0])]
    assert limits == [SECURITY_LOG_MIN_KB, SECURITY_LOG_MAX_KB]


def test_defaults() -> None:
    settings = GpoSettings.from_user()
    assert settings == GpoSettings()
    assert settings.display_name == DEFAULT_DISPLAY_NAME
    assert settings.domain == PLACEHOLDER_DOMAIN
    assert settings.domain.endswith(".invalid")  # RFC 2606 reserved: never a real domain
    assert (settings.include_failure, settings.security_log_max_kb) == (False, None)
    assert (settings.audit_setting_value, settings.audit_inclusion_setting) == (1, "Success")


def test_include_failure_is_setting_value_3() -> None:
    settings = GpoSettings.from_user(include_failure=True)
    assert (settings.audit_setting_value, settings.audit_inclusion_setting) == (3, "Success and Failure")


@pytest.mark.parametrize(
    "name", ["Audit ]]> & <stuff>", "Überwachung: Prozesserstellung", "日本語のGPO", "x" * 255, "a'b\"c"]
)
def test_display_names_accepted(name: str) -> None:
    assert GpoSettings.from_user(display_name=name).display_name == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        (" padded", "start/end with whitespace"),
        ("line\nbreak", "U\\+000A"),
        ("tab\there", "U\\+0009"),
        ("del\x7f", "U\\+007F"),
        ("x" * 256, "256 characters"),
    ],
)
def test_display_names_rejected(name: str, message: str) -> None:
    with pytest.raises(GpoSettingsError, match=f"--name: .*{message}"):
        GpoSettings.from_user(display_name=name)


@pytest.mark.parametrize(
    ("domain", "stored"),
    [("corp.example.com", "corp.example.com"), ("CORP.example.com.", "CORP.example.com"), ("lab", "lab")],
)
def test_domains_accepted(domain: str, stored: str) -> None:
    assert GpoSettings.from_user(domain=domain).domain == stored


@pytest.mark.parametrize(
    "domain", ["", ".", "bad_domain.com", "-lead.com", "trail-.com", "a..b", "x" * 64 + ".com", "ex ample.com"]
)
def test_domains_rejected(domain: str) -> None:
    with pytest.raises(GpoSettingsError, match=r"--domain: .* is not a DNS domain name"):
        GpoSettings.from_user(domain=domain)


def test_settings_errors_are_user_input_errors() -> None:
    assert issubclass(GpoSettingsError, UserInputError)


def test_settings_are_frozen() -> None:
    settings = GpoSettings()
    with pytest.raises(ValueError, match="frozen"):
        settings.include_failure = True  # type: ignore[misc]
