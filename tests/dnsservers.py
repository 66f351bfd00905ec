"""Start and stop real BIND 9 servers for tests and benchmarks.

Two layouts:

- single: one ``named`` on 127.0.0.1 at a free port, primary for every test zone.
- pair: a primary on 127.0.0.2:53 and a secondary on 127.0.0.3:53 fed by NOTIFY and
  IXFR, with the zones' NS records naming ns1/ns2 at those addresses, so that name
  server discovery and a real transfer lag can be tested. It needs root to add the two
  addresses to the loopback interface.

Both accept RFC 2136 updates signed with a TSIG key on the primary and log every query
(``querylog yes``) to ``named.log`` in the server's directory.

Used from a script::

    python tests/dnsservers.py single     # or: pair

It prints the addresses and the path of a settings file (mode 0600) with the TSIG key.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

TSIG_KEY_NAME = "o365dkim-test"
TSIG_ALGORITHM = "hmac-sha256"
PAIR_PRIMARY = "127.0.0.2"
PAIR_SECONDARY = "127.0.0.3"
DNS_PORT = 53
STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class TestZone:
    """A zone every test server loads, with its SOA minimum (the negative TTL, RFC 2308)."""

    name: str
    soa_minimum: int


# example.org has a one-hour negative TTL for the negative caching case.
TEST_ZONES = (
    TestZone("example.com", 300),
    TestZone("example.net", 300),
    TestZone("example.org", 3600),
)


class DnsServerUnavailable(RuntimeError):
    """Raised when a layout cannot run on this machine; the message is the reason."""


@dataclass
class BindServer:
    """One running ``named`` process and what a client needs to reach it."""

    role: str
    address: str
    port: int
    tsig_key_name: str
    tsig_secret: str
    tsig_algorithm: str
    zones: tuple[str, ...]
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        """The server as "HOST:PORT", the form the rfc2136 provider takes."""
        return f"{self.address}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "named.log"

    def log_text(self) -> str:
        """Return what named has logged so far (startup, errors and queries)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the process by its id and wait for it to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class BindPair:
    """A primary and a secondary fed by zone transfer, and the loopback addresses added."""

    primary: BindServer
    secondary: BindServer
    added_addresses: list[str]

    def stop(self) -> None:
        self.secondary.stop()
        self.primary.stop()
        remove_loopback_addresses(self.added_addresses)


def find_named() -> str | None:
    """Return the path of the named binary, or None when BIND is not installed."""
    found = shutil.which("named")
    if found:
        return found
    return "/usr/sbin/named" if os.access("/usr/sbin/named", os.X_OK) else None


def free_port(address: str = "127.0.0.1") -> int:
    """Return a port that is free for both UDP and TCP on ``address``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise DnsServerUnavailable(f"no port is free for both UDP and TCP on {address}")


def new_tsig_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def write_zone_file(path: Path, zone: TestZone, ns1: str, ns2: str) -> None:
    """Write a zone with SOA, two NS names and their A records, plus test names."""
    lines = [
        "$TTL 3600",
        f"@ IN SOA ns1.{zone.name}. hostmaster.{zone.name}. 1 3600 600 86400 {zone.soa_minimum}",
        f"@ IN NS ns1.{zone.name}.",
        f"@ IN NS ns2.{zone.name}.",
        f"ns1 IN A {ns1}",
        f"ns2 IN A {ns2}",
        # A subdomain that lives inside the parent zone, not in a zone of its own.
        "marketing IN A 192.0.2.10",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _options(workdir: Path, address: str, port: int, extra: Sequence[str]) -> str:
    body = [
        f'directory "{workdir}";',
        "pid-file none;",
        f'session-keyfile "{workdir}/session.key";',
        f'managed-keys-directory "{workdir}";',
        f"listen-on port {port} {{ {address}; }};",
        "listen-on-v6 { none; };",
        "recursion no;",
        "dnssec-validation no;",
        "querylog yes;",
        "allow-query { any; };",
        *extra,
    ]
    return "options {\n    " + "\n    ".join(body) + "\n};\n"


def _key_clause(secret: str) -> str:
    return f'key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{secret}"; }};\n'


def _primary_zone_clause(zone: str, secondary: str | None) -> str:
    transfer = (
        f" also-notify {{ {secondary}; }}; allow-transfer {{ {secondary}; }};" if secondary else ""
    )
    return (
        f'zone "{zone}" {{ type primary; file "{zone}.db";'
        f' allow-update {{ key "{TSIG_KEY_NAME}"; }};{transfer} }};\n'
    )


def _secondary_zone_clause(zone: str, primary: str) -> str:
    return f'zone "{zone}" {{ type secondary; primaries {{ {primary}; }}; file "{zone}.sec"; }};\n'


def _launch(server: BindServer, config: str) -> BindServer:
    named = find_named()
    if named is None:
        raise DnsServerUnavailable("BIND 9 (named) is not installed")
    server.workdir.mkdir(parents=True, exist_ok=True)
    conf_path = server.workdir / "named.conf"
    conf_path.write_text(config, encoding="utf-8")

    log = server.log_path.open("wb")
    server.process = subprocess.Popen(
        [named, "-g", "-c", str(conf_path), "-u", "root", "-n", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        _wait_until_serving(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_serving(server: BindServer) -> None:
    """Poll the SOA of every zone until named answers it with authority."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    pending = list(server.zones)
    while pending:
        assert server.process is not None
        if server.process.poll() is not None:
            raise DnsServerUnavailable(
                f"named ({server.role}) exited with {server.process.returncode}:\n"
                + server.log_text()[-3000:]
            )
        if time.monotonic() > deadline:
            raise DnsServerUnavailable(
                f"named ({server.role}) did not serve {pending} within {STARTUP_TIMEOUT} s:\n"
                + server.log_text()[-3000:]
            )
        if _serves_zone(server.address, server.port, pending[0]):
            pending.pop(0)
        else:
            time.sleep(0.05)


def _serves_zone(address: str, port: int, zone: str) -> bool:
    query = dns.message.make_query(zone, "SOA")
    query.flags &= ~dns.flags.RD
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.5)
    except (OSError, dns.exception.Timeout):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.flags & dns.flags.AA)


def start_single(workdir: Path, *, port: int | None = None) -> BindServer:
    """Start layout (a): one primary on 127.0.0.1 at a free port."""
    address = "127.0.0.1"
    server = BindServer(
        role="primary",
        address=address,
        port=port or free_port(address),
        tsig_key_name=TSIG_KEY_NAME,
        tsig_secret=new_tsig_secret(),
        tsig_algorithm=TSIG_ALGORITHM,
        zones=tuple(zone.name for zone in TEST_ZONES),
        workdir=workdir,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    for zone in TEST_ZONES:
        write_zone_file(workdir / f"{zone.name}.db", zone, address, address)
    config = _options(workdir, address, server.port, ["notify no;"])
    config += "controls { };\n" + _key_clause(server.tsig_secret)
    config += "".join(_primary_zone_clause(zone.name, None) for zone in TEST_ZONES)
    return _launch(server, config)


def start_pair(workdir: Path) -> BindPair:
    """Start layout (b): primary on 127.0.0.2:53, secondary on 127.0.0.3:53."""
    added = add_loopback_addresses([PAIR_PRIMARY, PAIR_SECONDARY])
    try:
        for address in (PAIR_PRIMARY, PAIR_SECONDARY):
            require_free_port(address, DNS_PORT)
    except DnsServerUnavailable:
        remove_loopback_addresses(added)
        raise
    secret = new_tsig_secret()
    zones = tuple(zone.name for zone in TEST_ZONES)
    primary = BindServer(
        "primary",
        PAIR_PRIMARY,
        DNS_PORT,
        TSIG_KEY_NAME,
        secret,
        TSIG_ALGORITHM,
        zones,
        workdir / "primary",
    )
    secondary = BindServer(
        "secondary",
        PAIR_SECONDARY,
        DNS_PORT,
        TSIG_KEY_NAME,
        secret,
        TSIG_ALGORITHM,
        zones,
        workdir / "secondary",
    )
    try:
        _launch(primary, _primary_pair_config(primary))
        _launch(secondary, _secondary_pair_config(secondary))
    except BaseException:
        primary.stop()
        remove_loopback_addresses(added)
        raise
    return BindPair(primary, secondary, added)


def _primary_pair_config(primary: BindServer) -> str:
    primary.workdir.mkdir(parents=True, exist_ok=True)
    for zone in TEST_ZONES:
        write_zone_file(primary.workdir / f"{zone.name}.db", zone, PAIR_PRIMARY, PAIR_SECONDARY)
    # Without notify-source and transfer-source the kernel picks 127.0.0.1 as the
    # source address, and the servers reject each other's NOTIFY and transfer.
    extra = [
        "notify explicit;",
        f"notify-source {PAIR_PRIMARY};",
        f"transfer-source {PAIR_PRIMARY};",
    ]
    config = _options(primary.workdir, PAIR_PRIMARY, DNS_PORT, extra)
    config += "controls { };\n" + _key_clause(primary.tsig_secret)
    config += "".join(_primary_zone_clause(zone.name, PAIR_SECONDARY) for zone in TEST_ZONES)
    return config


def _secondary_pair_config(secondary: BindServer) -> str:
    extra = [
        "notify no;",
        f"notify-source {PAIR_SECONDARY};",
        f"transfer-source {PAIR_SECONDARY};",
    ]
    config = _options(secondary.workdir, PAIR_SECONDARY, DNS_PORT, extra)
    config += "controls { };\n"
    config += "".join(_secondary_zone_clause(zone.name, PAIR_PRIMARY) for zone in TEST_ZONES)
    return config


def require_free_port(address: str, port: int) -> None:
    """Raise DnsServerUnavailable when another process already uses ``address:port``.

    Without this check a second test session would talk to the first one's servers, which
    hold a different TSIG key.
    """
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((address, port))
            except OSError as err:
                raise DnsServerUnavailable(
                    f"{address}:{port} is already in use ({err.strerror}); stop the DNS "
                    "server or test session holding it"
                ) from err


def add_loopback_addresses(addresses: Sequence[str]) -> list[str]:
    """Add each address to ``lo`` unless present; return the ones added.

    Raises DnsServerUnavailable with the reason when an address cannot be added.
    """
    if os.geteuid() != 0:
        raise DnsServerUnavailable("adding 127.0.0.2 and 127.0.0.3 to lo needs root")
    ip = shutil.which("ip")
    if ip is None:
        raise DnsServerUnavailable("the ip command (iproute2) is not installed")
    shown = subprocess.run(
        [ip, "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=False
    ).stdout
    added: list[str] = []
    for address in addresses:
        if f"inet {address}/" in shown:
            continue
        result = subprocess.run(
            [ip, "addr", "add", f"{address}/32", "dev", "lo"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            remove_loopback_addresses(added)
            raise DnsServerUnavailable(
                f"ip addr add {address}/32 dev lo failed: {result.stderr.strip()}"
            )
        added.append(address)
    return added


def remove_loopback_addresses(addresses: Sequence[str]) -> None:
    ip = shutil.which("ip")
    if ip is None:
        return
    for address in addresses:
        subprocess.run(
            [ip, "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True, check=False
        )


def update_records(
    server: BindServer,
    zone: str,
    *,
    delete: Sequence[tuple[str, str]] = (),
    add: Sequence[tuple[str, str, str]] = (),
    ttl: int = 300,
) -> None:
    """Send one TSIG-signed UPDATE: delete (name, type) rrsets, then add (name, type, value).

    Test setup uses this to put records in place without going through the code under test.
    """
    keyring = dns.tsigkeyring.from_text({server.tsig_key_name: server.tsig_secret})
    update = dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm=server.tsig_algorithm)
    for name, rtype in delete:
        update.delete(_absolute(name), rtype)
    for name, rtype, value in add:
        update.add(_absolute(name), ttl, rtype, value)
    response = dns.query.tcp(update, server.address, port=server.port, timeout=5)
    if response.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"update of {zone} failed: {dns.rcode.to_text(response.rcode())}")


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


@contextlib.contextmanager
def running_single(workdir: Path | None = None) -> Iterator[BindServer]:
    """Run layout (a) for the duration of a ``with`` block."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bind-")))
        server = start_single(workdir)
        stack.callback(server.stop)
        yield server


@contextlib.contextmanager
def running_pair(workdir: Path | None = None) -> Iterator[BindPair]:
    """Run layout (b) for the duration of a ``with`` block."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bind-")))
        pair = start_pair(workdir)
        stack.callback(pair.stop)
        yield pair


def _describe(server: BindServer) -> dict[str, object]:
    return {
        "role": server.role,
        "server": server.server,
        "tsig_key_name": server.tsig_key_name,
        "tsig_secret": server.tsig_secret,
        "tsig_algorithm": server.tsig_algorithm,
        "zones": list(server.zones),
        "log": str(server.log_path),
    }


def _announce(servers: Sequence[BindServer], directory: Path) -> None:
    """Write the settings, secret included, to a file only root can read, and print its path."""
    settings_path = directory / "settings.json"
    settings_path.touch(mode=0o600)
    settings_path.write_text(
        json.dumps([_describe(s) for s in servers], indent=2), encoding="utf-8"
    )
    for server in servers:
        sys.stdout.write(f"{server.role}: {server.server} zones {', '.join(server.zones)}\n")
    sys.stdout.write(f"settings with the TSIG key: {settings_path}\n")
    sys.stdout.flush()


def main(argv: Sequence[str]) -> int:
    """Start a layout, print its settings as JSON and run until SIGINT or SIGTERM."""
    layout = argv[0] if argv else "single"
    if layout not in ("single", "pair"):
        sys.stderr.write("usage: python tests/dnsservers.py [single|pair]\n")
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if layout == "single":
            with running_single() as server:
                _announce([server], server.workdir)
                signal.pause()
        else:
            with running_pair() as pair:
                _announce([pair.primary, pair.secondary], pair.primary.workdir.parent)
                signal.pause()
    except KeyboardInterrupt:
        return 0
    except DnsServerUnavailable as err:
        sys.stderr.write(f"{err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def authoritative_cname_lookup(server: BindServer) -> Callable[[str], str | None]:
    """Return a CNAME lookup that asks ``server`` directly with recursion off.

    Sandbox tenants use it as their own CNAME check, the way Exchange checks the records.
    """

    def lookup(host: str) -> str | None:
        query = dns.message.make_query(host, "CNAME")
        query.flags &= ~dns.flags.RD
        response = dns.query.udp(query, server.address, port=server.port, timeout=2)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                return str(rrset[0].target.to_text(omit_final_dot=True)).lower()
        return None

    return lookup
