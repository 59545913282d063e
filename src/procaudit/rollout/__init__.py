"""Staged rollout: waves planned from an estimate (``plan``), executed by ``deploy``."""

from procaudit.rollout.plan import LogSizeChange, Plan, PlanHost, PlanSettings, Wave, build_plan, canary_count

__all__ = ["LogSizeChange", "Plan", "PlanHost", "PlanSettings", "Wave", "build_plan", "canary_count"]
