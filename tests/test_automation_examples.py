"""The examples in docs/automation/, run against sandbox tenants and real BIND.

The Azure Automation runbook signs in through the sandbox's managed identity endpoint,
which speaks the App Service protocol as Automation jobs see it. The GitHub Actions
workflow's own shell steps run with the sandbox's GitHub OIDC endpoint. Both sign-ins go
through MSAL over HTTPS. What needs GitHub or Azure themselves (actions/checkout, pip
install from the index, Automation variables) is left out, so the workflow's commands are
also checked against the CLI's options.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from dnsservers import BindServer, authoritative_cname_lookup
from tenant_fixtures import TenantFactory, TenantHandle

from o365dkim.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "automation"
WORKFLOW = EXAMPLES / "github-actions-enable-dkim.yml"
RUNBOOK = EXAMPLES / "azure-automation-runbook.py"
TICKET_STEP = EXAMPLES / "ticket-step.py"
#: The console script installed next to this interpreter (pip install -e .).
CONSOLE_SCRIPT = Path(sys.executable).parent / "o365dkim"


def clean_env(home: Path) -> dict[str, str]:
    """Return this environment without O365DKIM_* settings, with a private HOME.

    Sign-in and the admin API point at a closed loopback port, so a run that misses its
    sandbox fails instead of reaching for Microsoft's hosts.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    env.update({"O365DKIM_AUTHORITY_HOST": "https://127.0.0.1:9",
                "O365DKIM_API_BASE": "https://127.0.0.1:9"})
    env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
                "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")})
    return env


def sandbox_endpoints(handle: TenantHandle, bind: BindServer) -> dict[str, str]:
    """Return the test-only variables that point sign-in, the admin API and DNS at loopback."""
    return {
        "O365DKIM_AUTHORITY_HOST": handle.server.base_url,
        "O365DKIM_API_BASE": handle.server.base_url,
        "O365DKIM_CA_BUNDLE": str(handle.ca_bundle),
        "O365DKIM_NAMESERVERS": bind.server,
        "O365DKIM_RESOLVERS": bind.server,
        "O365DKIM_INTERVAL": "0.3",
        "O365DKIM_TIMEOUT": "60",
    }


def rfc2136_settings(bind: BindServer) -> dict[str, str]:
    return {
        "O365DKIM_DNS_PROVIDER": "rfc2136",
        "O365DKIM_RFC2136_SERVER": bind.server,
        "O365DKIM_RFC2136_KEY_NAME": bind.tsig_key_name,
        "O365DKIM_RFC2136_KEY_SECRET": bind.tsig_secret,
        "O365DKIM_RFC2136_KEY_ALGORITHM": bind.tsig_algorithm,
    }


# -- Azure Automation runbook ---------------------------------------------------------------


def test_runbook_signs_in_as_managed_identity(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str, tmp_path: Path
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    handle.server.assign_managed_identity(handle.tenant.tenant_id)
    env = clean_env(tmp_path)
    env.update(handle.server.managed_identity_environment())
    env.update(sandbox_endpoints(handle, bind_server))
    env.update(rfc2136_settings(bind_server))
    completed = subprocess.run(
        [sys.executable, str(RUNBOOK), domain], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == "enabled"
    assert all(json.loads(line) for line in completed.stderr.splitlines())


def test_runbook_without_domain_exits_2(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(RUNBOOK)], capture_output=True, text=True, env=clean_env(tmp_path),
        cwd=tmp_path, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert "Give the domain" in completed.stdout


# -- GitHub Actions workflow ----------------------------------------------------------------


def load_workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def workflow_job() -> dict[str, Any]:
    return load_workflow()["jobs"]["enable"]


def o365dkim_commands(script: str) -> list[list[str]]:
    """Return the o365dkim command lines of a step's shell script, split into words."""
    commands = []
    for line in script.splitlines():
        words = shlex.split(line.split(">")[0])
        if words and words[0] == "o365dkim":
            commands.append(words[1:])
    return commands


def cli_options(path: list[str]) -> set[str]:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {option for param in command.params for option in param.opts}


def cli_variables() -> set[str]:
    names: set[str] = set()
    group: Any = typer.main.get_command(app)
    for command in group.commands.values():
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def test_workflow_requests_id_token() -> None:
    assert load_workflow()["permissions"]["id-token"] == "write"


def test_workflow_commands_use_known_options() -> None:
    scripts = [step["run"] for step in workflow_job()["steps"] if "run" in step]
    commands = [words for script in scripts for words in o365dkim_commands(script)]
    assert [words[0] for words in commands] == ["plan", "enable"]
    for words in commands:
        unknown = {word for word in words if word.startswith("--")} - cli_options(words[:1])
        assert unknown == set(), words


def test_workflow_variables_are_cli_settings() -> None:
    names = {name for name in workflow_job()["env"] if name.startswith("O365DKIM_")}
    assert names - cli_variables() == set()


def workflow_env(job: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """Return the job's env block with each ``${{ context.NAME }}`` replaced from ``values``."""
    env = {}
    for name, value in job["env"].items():
        text = str(value)
        if text.startswith("${{"):
            key = text.strip("${} ").split(".")[-1]
            text = values[key]
        env[name] = text
    return env


def test_workflow_steps_sign_in_federated(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str, tmp_path: Path
) -> None:
    if not CONSOLE_SCRIPT.is_file():
        pytest.skip(f"no o365dkim console script next to {sys.executable}")
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    github = handle.server.enable_github_actions("repo:contoso/dns:environment:microsoft-365")
    handle.server.add_federated_credential(
        handle.tenant.tenant_id, handle.client_id, github.issuer, github.subject
    )
    job = workflow_job()
    values = {"domain": domain, "O365DKIM_TENANT": handle.tenant.name,
              "O365DKIM_CLIENT_ID": handle.client_id,
              "O365DKIM_RFC2136_SERVER": bind_server.server,
              "O365DKIM_RFC2136_KEY_NAME": bind_server.tsig_key_name,
              "O365DKIM_RFC2136_KEY_SECRET": bind_server.tsig_secret}
    env = clean_env(tmp_path)
    env.update(workflow_env(job, values))
    env.update(sandbox_endpoints(handle, bind_server))
    env.update({"O365DKIM_RFC2136_KEY_ALGORITHM": bind_server.tsig_algorithm,
                "ACTIONS_ID_TOKEN_REQUEST_URL": handle.server.github_request_url(),
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": github.request_token,
                "PATH": f"{CONSOLE_SCRIPT.parent}{os.pathsep}{env.get('PATH', '')}"})

    for step in job["steps"]:
        if step.get("name") not in ("Plan", "Enable"):
            continue
        # GitHub runs a `run:` script with bash -e {0} on Linux runners.
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
        )
        assert completed.returncode == 0, (step["name"], completed.stderr)

    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert result["result"] == "enabled"
    assert github.requests >= 1


# -- ticket step ----------------------------------------------------------------------------


def run_ticket_step(args: list[str], cwd: Path, stdin: str | None = None) -> dict[str, Any]:
    env = clean_env(cwd)
    env["O365DKIM_COMMAND"] = f"{shlex.quote(sys.executable)} -m o365dkim"
    completed = subprocess.run(
        [sys.executable, str(TICKET_STEP), *args], input=stdin, capture_output=True, text=True,
        env=env, cwd=cwd, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_ticket_step_resolves_domain(tmp_path: Path) -> None:
    update = run_ticket_step(["example.com", "--sandbox"], tmp_path)
    assert update["ticket_state"] == "resolved"
    assert update["result"]["result"] == "enabled"


def test_ticket_step_reads_json_request(tmp_path: Path) -> None:
    update = run_ticket_step([], tmp_path, stdin='{"domain": "bad domain"}')
    assert update["ticket_state"] == "rejected"
    assert update["exit_code"] == 2
    assert "Invalid domain 'bad domain'" in update["error"]


def test_ticket_step_waits_for_dns(tmp_path: Path) -> None:
    update = run_ticket_step(["example.com", "--sandbox", "--timeout", "0"], tmp_path)
    assert update["ticket_state"] == "waiting"
    assert update["result"]["result"] == "pending_dns"


def test_ticket_step_conflict_needs_attention(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    created = subprocess.run(
        [sys.executable, "-m", "o365dkim", "status", "example.net", "--sandbox",
         "--sandbox-state", str(state)],
        capture_output=True, text=True, env=clean_env(tmp_path), cwd=tmp_path, timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    data = json.loads(state.read_text(encoding="utf-8"))
    data["dns"]["rrsets"].append({"name": "selector1._domainkey.example.net", "type": "TXT",
                                  "ttl": 300, "values": ['"v=spf1 -all"']})
    state.write_text(json.dumps(data), encoding="utf-8")

    update = run_ticket_step(["example.net", "--sandbox", "--sandbox-state", str(state)], tmp_path)
    assert update["ticket_state"] == "needs_attention"
    assert update["result"]["error"]["type"] == "DnsConflictError"
