"""Known secrets never appear in stdout, stderr, the --debug log or any file the tool writes.

Every command runs as a subprocess with its secrets in the environment, on the command
line, in the keyring and in a bulk profile. The secrets are real: the PEM key is encrypted with the
certificate password, BIND checks the TSIG key secret, and the sandbox's token endpoint
checks the client secret. Failing paths run with wrong values of each. Each run uses
--debug with JSON log lines, and a few use text logs. Access tokens are checked too, so
no JWT may appear in any output.

The system keyring cannot run here (no D-Bus Secret Service), so the runs use
tests/file_keyring.py, a keyring backend in a JSON file kept outside the scanned folders.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from dnsservers import BindServer, authoritative_cname_lookup
from tenant_fixtures import TenantFactory, TenantHandle

TESTS = Path(__file__).resolve().parent
CERT_PASSWORD = "pfx-Pass-3f9c1a7e-known"
CLIENT_SECRET = "client-Secret-8d2b6e41-known"
WRONG_PASSWORD = "wrong-Pass-1b4d8f26-known"
WRONG_TSIG = base64.b64encode(b"wrong-tsig-key-5a7c0d93-known!!").decode()
MALFORMED_TSIG = "not base64 tsig 9e3f-known!"
#: A JWT (header.payload.): what an access or ID token looks like in text.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


@dataclass
class Run:
    """One command run and what it wrote."""

    label: str
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Scene:
    """A sandbox tenant, BIND, and the folders the runs may write to."""

    handle: TenantHandle
    bind: BindServer
    domain: str
    inputs: Path
    home: Path
    work: Path
    runs: list[Run] = field(default_factory=list)

    def secrets(self) -> dict[str, str]:
        return {
            "certificate password": CERT_PASSWORD,
            "client secret": CLIENT_SECRET,
            "TSIG secret": self.bind.tsig_secret,
            "wrong password": WRONG_PASSWORD,
            "wrong TSIG secret": WRONG_TSIG,
            "malformed TSIG secret": MALFORMED_TSIG,
        }

    def env(self, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
        env.update({
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")])),
            "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
            "TEST_KEYRING_FILE": str(self.inputs / "keyring.json"),
            "O365DKIM_AUTHORITY_HOST": self.handle.server.base_url,
            "O365DKIM_API_BASE": self.handle.server.base_url,
            "O365DKIM_CA_BUNDLE": str(self.handle.ca_bundle),
            "O365DKIM_TENANT": self.handle.tenant.name,
            "O365DKIM_CLIENT_ID": self.handle.client_id,
            "O365DKIM_CERTIFICATE": str(self.inputs / "app-encrypted.pem"),
            "O365DKIM_CERTIFICATE_PASSWORD": CERT_PASSWORD,
            "O365DKIM_DNS_PROVIDER": "rfc2136",
            "O365DKIM_RFC2136_SERVER": self.bind.server,
            "O365DKIM_RFC2136_KEY_NAME": self.bind.tsig_key_name,
            "O365DKIM_RFC2136_KEY_SECRET": self.bind.tsig_secret,
            "O365DKIM_RFC2136_KEY_ALGORITHM": self.bind.tsig_algorithm,
            "O365DKIM_NAMESERVERS": self.bind.server,
            "O365DKIM_RESOLVERS": self.bind.server,
            "O365DKIM_INTERVAL": "0.3",
            "O365DKIM_TIMEOUT": "60",
        })
        env.update(overrides)
        return env

    def run(self, label: str, args: list[str], *, json_log: bool = True, stdin: str = "",
            **overrides: str) -> Run:
        log_options = ["--debug", "--log-format", "json" if json_log else "text"]
        completed = subprocess.run(
            [sys.executable, "-m", "o365dkim", *args, *log_options],
            input=stdin, capture_output=True, text=True, env=self.env(**overrides),
            cwd=self.work, timeout=120, check=False,
        )
        run = Run(label, args, completed.returncode, completed.stdout, completed.stderr)
        self.runs.append(run)
        return run


def write_encrypted_certificate(handle: TenantHandle, path: Path) -> None:
    key = serialization.load_pem_private_key(handle.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CERT_PASSWORD.encode()),
    )
    path.write_bytes(encrypted + handle.cert_pem)
    path.chmod(0o600)


def write_profile(scene: Scene) -> None:
    """Write a bulk profile whose secrets are a keyring entry and an environment variable."""
    bind = scene.bind
    (scene.inputs / "config.toml").write_text(
        "[profiles.leak]\n"
        f'tenant = "{scene.handle.tenant.name}"\n'
        f'client_id = "{scene.handle.client_id}"\n'
        f'certificate = "{scene.inputs / "app-encrypted.pem"}"\n'
        'certificate_password = "keyring:pfx-password"\n'
        'dns_provider = "rfc2136"\n'
        "[profiles.leak.dns]\n"
        f'server = "{bind.server}"\n'
        f'key_name = "{bind.tsig_key_name}"\n'
        'key_secret = "env:LEAK_TSIG_SECRET"\n'
        f'key_algorithm = "{bind.tsig_algorithm}"\n',
        encoding="utf-8",
    )
    (scene.inputs / "domains.csv").write_text(
        f"domain,profile\n{scene.domain},leak\n", encoding="utf-8"
    )


@pytest.fixture(scope="module")
def scene(bind_server: BindServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """Run every command once per secret source, keeping all outputs."""
    root = tmp_path_factory.mktemp("leaks")
    factory = TenantFactory(root)
    try:
        domain = f"leak{os.getpid()}.example.net"
        handle = factory([domain], cname_lookup=authoritative_cname_lookup(bind_server))
        handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
        folders = [root / name for name in ("inputs", "home", "work")]
        for folder in folders:
            folder.mkdir()
        scene = Scene(handle, bind_server, domain, *folders)
        write_encrypted_certificate(handle, scene.inputs / "app-encrypted.pem")
        run_everything(scene)
        yield scene
    finally:
        factory.stop()


def run_everything(scene: Scene) -> None:
    domain = scene.domain
    # Secrets in the environment.
    scene.run("enable", ["enable", domain, "--output", "json"])
    scene.run("status", ["status", domain, "--output", "json"])
    scene.run("records", ["records", domain, "--output", "json"])
    scene.run("plan", ["plan", domain, "--output", "json"])
    scene.run("login", ["login", "--output", "json"])
    scene.run("whoami", ["whoami", "--output", "json"])
    scene.run("enable text log", ["enable", domain], json_log=False)
    scene.run("logout", ["logout", "--output", "json"])
    scene.run("dns test", ["dns", "test", "rfc2136", "--zone", "example.net", "--output", "json"])

    # Secrets on the command line.
    scene.run("options", ["enable", domain, "--certificate-password", CERT_PASSWORD,
                          "--rfc2136-key-secret", scene.bind.tsig_secret],
              O365DKIM_CERTIFICATE_PASSWORD="", O365DKIM_RFC2136_KEY_SECRET="")

    # Client secret sign-in.
    scene.run("client secret", ["whoami", "--auth", "client-secret", "--output", "json"],
              O365DKIM_CERTIFICATE="", O365DKIM_CERTIFICATE_PASSWORD="",
              O365DKIM_CLIENT_SECRET=CLIENT_SECRET)

    # Secrets in the keyring.
    scene.run("secret set", ["secret", "set", "pfx-password"], stdin=CERT_PASSWORD)
    scene.run("secret set tsig", ["secret", "set", "tsig"], stdin=scene.bind.tsig_secret)
    scene.run("keyring", ["plan", domain, "--output", "json"],
              O365DKIM_CERTIFICATE_PASSWORD="keyring:pfx-password",
              O365DKIM_RFC2136_KEY_SECRET="keyring:tsig")
    write_profile(scene)
    scene.run("bulk profile", ["bulk", str(scene.inputs / "domains.csv"), "--config",
                               str(scene.inputs / "config.toml"), "--results",
                               str(scene.work / "bulk.results.json"), "--output", "json"],
              O365DKIM_TENANT="", O365DKIM_CLIENT_ID="", O365DKIM_CERTIFICATE="",
              O365DKIM_CERTIFICATE_PASSWORD="", O365DKIM_RFC2136_KEY_SECRET="",
              LEAK_TSIG_SECRET=scene.bind.tsig_secret)
    scene.run("secret delete", ["secret", "delete", "pfx-password"])

    # Failing paths, whose error messages must not quote the wrong values either.
    scene.run("wrong password", ["status", domain, "--output", "json"],
              O365DKIM_CERTIFICATE_PASSWORD=WRONG_PASSWORD)
    scene.run("wrong TSIG", ["enable", f"other.{domain}", "--output", "json"],
              O365DKIM_RFC2136_KEY_SECRET=WRONG_TSIG, O365DKIM_TIMEOUT="5")
    scene.run("wrong TSIG text", ["enable", f"other.{domain}"], json_log=False,
              O365DKIM_RFC2136_KEY_SECRET=WRONG_TSIG, O365DKIM_TIMEOUT="5")
    scene.run("malformed TSIG", ["plan", domain], json_log=False,
              O365DKIM_RFC2136_KEY_SECRET=MALFORMED_TSIG)


EXPECTED_EXIT = {
    "enable": 0, "status": 0, "records": 0, "plan": 0, "login": 0, "whoami": 0,
    "enable text log": 0, "logout": 0, "dns test": 0, "options": 0, "client secret": 0,
    "secret set": 0, "secret set tsig": 0, "keyring": 0, "bulk profile": 0,
    "secret delete": 0, "wrong password": 2, "wrong TSIG": 1, "wrong TSIG text": 1,
    "malformed TSIG": 2,
}


@pytest.mark.parametrize("label", list(EXPECTED_EXIT))
def test_run_exit_code(scene: Scene, label: str) -> None:
    run = next(run for run in scene.runs if run.label == label)
    assert run.exit_code == EXPECTED_EXIT[label], run.stderr[-2000:]


@pytest.mark.parametrize("label", list(EXPECTED_EXIT))
def test_secrets_absent_from_output(scene: Scene, label: str) -> None:
    run = next(run for run in scene.runs if run.label == label)
    for name, secret in scene.secrets().items():
        assert secret not in run.stdout, f"{name} in stdout"
        assert secret not in run.stderr, f"{name} in stderr"


@pytest.mark.parametrize("label", list(EXPECTED_EXIT))
def test_tokens_absent_from_output(scene: Scene, label: str) -> None:
    run = next(run for run in scene.runs if run.label == label)
    assert JWT.search(run.stdout) is None
    assert JWT.search(run.stderr) is None


def test_debug_log_was_written(scene: Scene) -> None:
    run = next(run for run in scene.runs if run.label == "enable")
    assert "client-request-id" in run.stderr


def test_secrets_absent_from_files(scene: Scene) -> None:
    written = [path for folder in (scene.home, scene.work) for path in folder.rglob("*")
               if path.is_file()]
    for path in written:
        data = path.read_bytes()
        for name, secret in scene.secrets().items():
            assert secret.encode() not in data, f"{name} in {path}"
