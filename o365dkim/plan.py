"""Plans: what ``enable`` would do for a domain, found without changing anything."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import PlanAction, PublishPlan
from o365dkim.domains import require_custom_domain, selector_hosts
from o365dkim.exchange.client import ExchangeClient


class PlanOutcome(str, enum.Enum):
    """The summary of a plan."""

    CHANGES = "changes"
    NOTHING_TO_DO = "nothing_to_do"
    CONFLICT = "conflict"


@dataclass
class PlanReport:
    """What ``enable`` would do for one domain, found without changing anything."""

    domain: str
    outcome: PlanOutcome
    create_config: bool = False
    enable: bool = False
    dns: list[PublishPlan] = field(default_factory=list)
    targets: dict[str, str | None] = field(default_factory=dict)

    def steps(self) -> list[str]:
        """Return the planned steps as sentences, in order."""
        if self.outcome is PlanOutcome.NOTHING_TO_DO:
            return ["nothing to do: DKIM signing is already enabled"]
        steps = ["create the DKIM config (signing off)"] if self.create_config else []
        for item in self.dns:
            target = self.targets.get(item.host) or "the target Exchange assigns"
            found = "; ".join(record.describe() for record in item.existing)
            steps.append(
                {
                    PlanAction.CREATE: f"publish {item.host} CNAME {target}",
                    PlanAction.UNCHANGED: f"keep {item.host}: it already points to {target}",
                    PlanAction.REPLACE: f"replace {found} with {item.host} CNAME {target}",
                    PlanAction.CONFLICT: f"stop: {item.host} has {found} (use --replace)",
                    PlanAction.MANUAL: f"show {item.host} CNAME {target} to publish by hand",
                }[item.action]
            )
        if self.enable:
            steps.append("wait until every authoritative name server returns both CNAMEs")
            steps.append("enable DKIM signing")
        return steps

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON data."""
        return {
            "domain": self.domain,
            "outcome": self.outcome.value,
            "create_config": self.create_config,
            "enable": self.enable,
            "dns": [
                {
                    "host": item.host,
                    "target": self.targets.get(item.host),
                    "action": item.action.value,
                    "existing": [record.describe() for record in item.existing],
                }
                for item in self.dns
            ],
            "steps": self.steps(),
        }


def plan_domain(
    domain: str, *, exchange: ExchangeClient, provider: DnsProvider, replace: bool = False
) -> PlanReport:
    """Return what ``enable_domain`` would do, reading Exchange and the DNS provider only."""
    require_custom_domain(domain)
    config = exchange.get_dkim_config(domain)
    if config is not None and config.enabled and config.has_targets:
        return PlanReport(domain, PlanOutcome.NOTHING_TO_DO)

    hosts = selector_hosts(domain)
    targets: dict[str, str | None] = {
        hosts[0]: config.selector1_cname if config else None,
        hosts[1]: config.selector2_cname if config else None,
    }
    dns_plans = [provider.plan(host, targets[host], replace=replace) for host in hosts]
    conflict = any(item.action is PlanAction.CONFLICT for item in dns_plans)
    return PlanReport(
        domain,
        PlanOutcome.CONFLICT if conflict else PlanOutcome.CHANGES,
        create_config=config is None,
        enable=not conflict,
        dns=dns_plans,
        targets=targets,
    )
