"""Readiness: will 4688 with the command line be logged on each host, what is in the way, what to do.

- ``catalog``: check metadata from ``checks/*.yaml``;
- ``evaluators``: one pure function of ``HostFacts`` per check;
- ``engine``: probe hosts (or read collector files), evaluate, summarise (``ReadinessReport``);
- ``collector``: the standalone ``Collect-ProcAudit.ps1`` for hosts WinRM cannot reach.
"""
