"""`trilha broker`: the embedded broker on the address TRILHA_KAFKA_BOOTSTRAP_SERVERS names."""

from __future__ import annotations

import argparse

from services.embedded import broker
from services.settings import Settings


def command(args: argparse.Namespace, settings: Settings) -> int:
    return broker.run(settings.kafka_bootstrap_servers)
