"""``procaudit deploy`` and ``procaudit rollback``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from procaudit.cli.app import EXIT_CODES_HELP, app
from procaudit.cli.estimate import OptionalFormatOpt, pick_format
from procaudit.cli.options import (
    ConnectionArgs,
    LimitOpt,
    OutputOpt,
    WorkersOpt,
    open_session,
    remoting_options,
    stderr,
)
from procaudit.errors import UserInputError
from procaudit.gpo.settings import DEFAULT_DISPLAY_NAME, parse_log_size
from procaudit.inventory import Overrides, load_inventory
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.rollout.deploy import (
    Deployment,
    DeployOptions,
    DeployReport,
    GpoOptions,
    open_journal,
)
from procaudit.rollout.journal import JournalStore
from procaudit.rollout.operations import format_value, item_label
from procaudit.rollout.planfile import load_rollout_plan
from procaudit.rollout.rollback import Rollback, RollbackReport

PlanOpt = Annotated[
    Path, typer.Option("--plan", "-p", help="Plan JSON ('procaudit plan -f json').", show_default=False)
]
JournalOpt = Annotated[
    Path | None,
    typer.Option("--journal", "-j", help="Journal file (default: next to the plan, <plan>.journal.json)."),
]
OptionalInventoryOpt = Annotated[
    Path | None, typer.Option("--inventory", "-i", help="Inventory file (procaudit or Ansible YAML).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _progress(message: str) -> None:
    stderr.print(message, highlight=False, markup=False)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserInputError("this changes hosts and stdin is not a terminal to confirm it: pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


@app.command(
    "deploy",
    help="Deploy process-creation auditing wave by wave from a plan: --check shows the per-host diff and changes "
    "nothing; otherwise each host is read, journalled, changed and read back, each wave verified, soaked and "
    "gated. Rerun with the same --journal to resume. Exit codes: 0 every host deployed and verified; 1 a host's "
    "change or verify FAILed, a host was refused or is rolled back (--check: pending changes); 2 usage or input "
    "error; 3 a host unreachable or lost mid-change; 4 a gate stopped the rollout; 130 interrupted (Ctrl-C, also "
    "during verify or the soak): rerun with the same --journal.",
)
@remoting_options
def deploy_command(
    plan_file: PlanOpt,
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file.", show_default=False)],
    strategy: Annotated[str, typer.Option("--strategy", help="direct (per host over PSRP) or gpo (a domain GPO).")] = (
        "direct"
    ),
    check: Annotated[bool, typer.Option("--check", help="Show what would change; change nothing.")] = False,
    yes: YesOpt = False,
    journal: JournalOpt = None,
    force_local: Annotated[
        bool, typer.Option("--force-local", help="Change settings a domain GPO owns anyway (the GPO will undo it).")
    ] = False,
    dc: Annotated[
        str | None, typer.Option("--dc", help="GPO strategy: the domain controller (inventory name).")
    ] = None,
    ou: Annotated[
        list[str] | None, typer.Option("--ou", help="GPO strategy: link the GPO to this OU (DN); repeat for several.")
    ] = None,
    gpo_name: Annotated[str, typer.Option("--gpo-name", help="GPO strategy: the GPO's display name.")] = (
        DEFAULT_DISPLAY_NAME
    ),
    group_prefix: Annotated[
        str, typer.Option("--group-prefix", help="GPO strategy: wave groups are <prefix>-w<N>.")
    ] = "procaudit-4688",
    group_path: Annotated[
        str | None, typer.Option("--group-path", help="GPO strategy: container/OU DN for new groups.")
    ] = None,
    log_size: Annotated[
        str | None, typer.Option("--log-size", help="GPO strategy: the Security log size the GPO sets (e.g. 1GB).")
    ] = None,
    include_failure: Annotated[
        bool, typer.Option("--include-failure", help="GPO strategy: audit failed process creation too.")
    ] = False,
    take_over_gpo: Annotated[
        bool,
        typer.Option(
            "--take-over-gpo",
            help="GPO strategy: a GPO named --gpo-name exists with other settings and procaudit did not deploy it: "
            "replace its settings anyway. Rollback restores its links and permissions, not its old settings.",
        ),
    ] = False,
    verify_timeout: Annotated[
        int, typer.Option("--verify-timeout", min=1, max=600, help="Seconds verify waits for the marker's 4688.")
    ] = 30,
    workers: WorkersOpt = 32,
    fmt: OptionalFormatOpt = None,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    chosen = pick_format(fmt, output, (OutputFormat.table, OutputFormat.json))
    if strategy not in ("direct", "gpo"):
        raise UserInputError(f"--strategy must be direct or gpo, not {strategy!r}")
    if strategy == "direct" and (dc or ou or log_size or include_failure or take_over_gpo):
        raise UserInputError("--dc, --ou, --log-size, --include-failure and --take-over-gpo belong to --strategy gpo")
    if strategy == "gpo" and (not dc or not ou):
        raise UserInputError("--strategy gpo needs --dc HOST and at least one --ou DN")
    rollout = load_rollout_plan(plan_file)
    args = ConnectionArgs(inventory, None, remoting)
    session = open_session(args)
    targets = {t.name: t for t in session.targets}
    gpo = None
    if strategy == "gpo":
        assert dc is not None and ou is not None
        if dc not in targets:
            raise UserInputError(f"--dc {dc}: not a host in {inventory}")
        gpo = GpoOptions(
            dc=targets[dc],
            ous=tuple(ou),
            name=gpo_name,
            group_prefix=group_prefix,
            group_path=group_path,
            log_size_kb=parse_log_size(log_size) if log_size else None,
            include_failure=include_failure,
            take_over=take_over_gpo,
        )
    options = DeployOptions(
        strategy=strategy,  # type: ignore[arg-type]
        force_local=force_local,
        workers=workers,
        verify_timeout=verify_timeout,
        gpo=gpo,
    )
    deployment = Deployment(rollout, targets, session.connect, options, progress=_progress)
    if check:
        report = deployment.predict()
    else:
        journal_path = journal or plan_file.with_name(plan_file.stem + ".journal.json")
        resuming = journal_path.exists()
        _confirm(
            f"{'Resume' if resuming else 'Start'} the {strategy} deployment of {len(rollout.hosts)} host(s) in "
            f"{len(rollout.waves)} wave(s) (journal {journal_path})?",
            yes,
        )
        store = open_journal(
            journal_path, rollout, options, inventory=inventory, lab=any(t.is_lab for t in targets.values())
        )
        stderr.print(f"journal: {journal_path} ({'resumed' if resuming else 'new'})", highlight=False, markup=False)
        report = deployment.run(store)
    if chosen == OutputFormat.json:
        emit(report.to_json(), output)
    elif report.check:
        emit(diff_text(report), output)
    else:
        print_rich(result_table(report), output)
    stderr.print(report.summary, highlight=False, markup=False)
    raise typer.Exit(report.exit_code)


def diff_text(report: DeployReport) -> str:
    """--check: per host, each change (before -> after), each refusal with its reason, each note."""
    lines = [
        f"procaudit deploy --check ({report.strategy})" + (" - LAB hosts (models, not Windows)" if report.lab else "")
    ]
    if report.domain:
        lines.append("domain:")
        for step in report.domain:
            lines.append(f"  {'+' if step.needed else '='} {step.action}: {step.detail}")
    for wave in report.waves:
        lines.append(f"wave {wave.index} ({wave.name}), soak {wave.soak_seconds:g} s:")
        for host in (h for h in report.hosts if h.wave == wave.index):
            if host.status == "ERROR":
                error = host.error
                lines.append(
                    f"  {host.host}: ERROR {error.kind}: {error.message}" if error else f"  {host.host}: ERROR"
                )
                continue
            if not host.changes and not host.refused:
                lines.append(f"  {host.host}: nothing to change")
            else:
                lines.append(f"  {host.host}:")
            for change in host.changes:
                lines.append(f"    ~ {change.describe()}")
            for refusal in host.refused:
                wanted = format_value(refusal.item, refusal.wanted)
                lines.append(f"    ! {refusal.label} -> {wanted}: REFUSED: {refusal.reason}")
            for note in host.notes:
                lines.append(f"    note: {note}")
    return "\n".join(lines) + "\n"


def result_table(report: DeployReport) -> Table:
    title = f"procaudit deploy ({report.strategy})" + (" - LAB hosts (models, not Windows)" if report.lab else "")
    table = Table(title=title)
    for column in ("Wave", "Host", "Status", "State", "Changes", "Verify", "Problem"):
        table.add_column(column)
    for host in report.hosts:
        problem = ""
        if host.error is not None:
            problem = f"{host.error.kind}: {host.error.message}"
        elif host.refused:
            problem = "; ".join(f"{r.label}: {r.reason}" for r in host.refused)
        verify = f"{host.verify.status} ({host.verify.reason})" if host.verify else ""
        colour = {"OK": "green", "REFUSED": "yellow", "SKIPPED": "dim"}.get(host.status, "red")
        table.add_row(
            str(host.wave),
            host.host,
            f"[{colour}]{host.status}[/]",
            host.state,
            str(len(host.changes)),
            verify,
            problem,
        )
    return table


@app.command(
    "rollback",
    help="Restore exactly the values a deployment's journal recorded before it changed them (or remove the GPO "
    "membership and links it added). Idempotent. " + EXIT_CODES_HELP,
)
@remoting_options
def rollback_command(
    journal: Annotated[Path, typer.Option("--journal", "-j", help="The deployment's journal.", show_default=False)],
    inventory: OptionalInventoryOpt = None,
    wave: Annotated[list[int] | None, typer.Option("--wave", help="Only this wave (repeat for several).")] = None,
    limit: LimitOpt = None,
    yes: YesOpt = False,
    workers: WorkersOpt = 32,
    fmt: OptionalFormatOpt = None,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    chosen = pick_format(fmt, output, (OutputFormat.table, OutputFormat.json))
    store = JournalStore.load(journal)
    source = inventory or (Path(store.journal.inventory) if store.journal.inventory else None)
    if source is None:
        raise UserInputError(f"{journal} names no inventory: pass --inventory")
    known_waves = {w.index for w in store.journal.waves}
    for index in wave or []:
        if index not in known_waves:
            raise UserInputError(f"--wave {index}: the journal has waves {', '.join(map(str, sorted(known_waves)))}")
    hosts = None
    if limit:
        selected = {h.name for h in load_inventory(source).select(limit)}
        hosts = selected & set(store.journal.hosts)
    args = ConnectionArgs(source, None, remoting)
    session = open_session(args)
    targets = {t.name: t for t in session.targets}
    dc = None
    if store.journal.gpo is not None:
        dc = targets.get(store.journal.gpo.dc)
        if dc is None:
            raise UserInputError(f"the domain controller {store.journal.gpo.dc} is not in {source}")
    count = len(hosts) if hosts is not None else len(store.journal.hosts)
    _confirm(f"Roll back {count} host(s) of {journal} to their journalled values?", yes)
    report = Rollback(store, targets, session.connect, workers=workers, progress=_progress, dc=dc).run(
        waves=set(wave) if wave else None, hosts=hosts
    )
    if chosen == OutputFormat.json:
        emit(report.to_json(), output)
    else:
        print_rich(rollback_table(report), output)
    for step in report.domain:
        stderr.print(f"domain: {step}", highlight=False, markup=False)
    stderr.print(report.summary, highlight=False, markup=False)
    raise typer.Exit(report.exit_code)


def rollback_table(report: RollbackReport) -> Table:
    title = f"procaudit rollback ({report.strategy})" + (" - LAB hosts (models, not Windows)" if report.lab else "")
    table = Table(title=title)
    for column in ("Wave", "Host", "Status", "Restored", "Left alone / problem"):
        table.add_column(column)
    for host in report.hosts:
        restored = ", ".join(f"{item_label(k)} = {format_value(k, v)}" for k, v in host.restored.items())
        problem = host.error or "; ".join(f"{k}: {v}" for k, v in host.skipped.items())
        table.add_row(str(host.wave), host.host, host.status, restored, problem)
    return table
