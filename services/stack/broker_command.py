"""`trilha broker`: the embedded broker on the address TRILHA_KAFKA_BOOTSTRAP_SERVERS names."""

from __future__ import annotations

import argparse

from services.runtime.settings import Settings
from services.stack import broker


def command(args: argparse.Namespace, settings: Settings) -> int:
    return broker.run(settings.kafka_bootstrap_servers)
