"""Realistic call records: valid CPF/CNPJ numbers in `q`, a mix of resources, statuses, durations,
tags and result sizes.

One generator serves the load generator, the demo traffic, the tests and the benchmarks, so they
all exercise the same shapes of data a platform really produces.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

RESOURCES: tuple[tuple[str, str, str, float], ...] = (
    # resource, method, event, weight
    ("pessoas", "POST", "consulta_pessoa", 0.35),
    ("empresas", "POST", "consulta_empresa", 0.25),
    ("processos", "POST", "consulta_processo", 0.1),
    ("enderecos", "GET", "consulta_endereco", 0.1),
    ("score", "POST", "calculo_score", 0.1),
    ("tokens", "POST", "gerar_token", 0.05),
    ("log", "POST", "consulta_evento", 0.05),
)
STATUSES: tuple[tuple[int, float], ...] = ((200, 0.86), (201, 0.03), (400, 0.04), (401, 0.02), (403, 0.01),
                                           (404, 0.02), (429, 0.01), (500, 0.008), (503, 0.002))
FIRST_NAMES = ("MARIA", "JOSÉ", "ANA", "JOÃO", "FRANCISCA", "ANTÔNIO", "LUCIA", "PAULO", "CONCEIÇÃO", "LUÍS")
SURNAMES = ("SILVA", "SANTOS", "OLIVEIRA", "SOUZA", "LIMA", "PEREIRA", "FERREIRA", "ALVES", "ARAÚJO", "GONÇALVES")
SERVERS = ("api-gw-01", "api-gw-02", "api-gw-03", "api-gw-04")


def cpf(rng: random.Random) -> str:
    """A CPF with valid check digits (11 digits, no punctuation)."""
    digits = [rng.randrange(10) for _ in range(9)]
    for weight_start in (10, 11):
        total = sum(d * w for d, w in zip(digits, range(weight_start, 1, -1), strict=False))
        digits.append((total * 10) % 11 % 10)
    return "".join(map(str, digits))


def cnpj(rng: random.Random) -> str:
    """A CNPJ with valid check digits (14 digits, branch 0001)."""
    digits = [rng.randrange(10) for _ in range(8)] + [0, 0, 0, 1]
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        digits.append(0 if rest < 2 else 11 - rest)
    return "".join(map(str, digits))


def _weighted(rng: random.Random, options: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return rng.choices(options, weights=[o[-1] for o in options])[0]


class RecordFactory:
    """Deterministic for a seed: the same seed yields the same records (benchmarks compare runs)."""

    def __init__(self, seed: int = 7, companies: int = 3, clients_per_company: int = 5,
                 result_bytes: tuple[int, int] = (200, 2000)) -> None:
        self.rng = random.Random(seed)
        self.companies = [f"company-{n + 1}" for n in range(companies)]
        self.result_bytes = result_bytes
        self.clients = {c: [self._client(c, n) for n in range(clients_per_company)] for c in self.companies}

    def _client(self, company: str, n: int) -> dict[str, str]:
        name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(SURNAMES)}"
        return {
            "client_id": f"{company}-client-{n + 1}",
            "client_name": name.title(),
            "client_username": name.lower().replace(" ", ".").replace("ã", "a").replace("é", "e"),
            "authorization_id": f"auth-{company}-{n % 3 + 1}",
            "authorization_name": f"Integração {('ERP', 'CRM', 'Mobile')[n % 3]}",
            "ip": self._ip(),
        }

    def _ip(self) -> str:
        if self.rng.random() < 0.2:
            return f"2001:db8:{self.rng.randrange(65536):x}::{self.rng.randrange(1, 65536):x}"
        return f"{self.rng.choice((10, 172, 189, 200))}.{self.rng.randrange(256)}." \
               f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def record(self, when: datetime | None = None, company: str | None = None, **fields: Any) -> dict[str, Any]:
        """One valid call record (contract v1); `fields` override what was generated."""
        rng = self.rng
        company = company or rng.choice(self.companies)
        client = rng.choice(self.clients.get(company) or self.clients[self.companies[0]])
        resource, method, event, _ = _weighted(rng, RESOURCES)
        status = _weighted(rng, STATUSES)[0]
        document = cnpj(rng) if resource == "empresas" else cpf(rng)
        q = f"doc{{{document}}}" + (f",name{{{rng.choice(FIRST_NAMES)}}}" if rng.random() < 0.3 else "")
        when = when or datetime.now(UTC)
        record: dict[str, Any] = {
            "schema_version": 1,
            "query_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "company_id": company,
            "timestamp": when.isoformat(timespec="milliseconds"),
            "duration_ms": round(rng.lognormvariate(4.0, 0.8), 3),
            **client,
            "server": rng.choice(SERVERS),
            "method": method,
            "url": f"https://plataforma.example.com/{resource}?dataset=basic_data&q={q}",
            "resource": resource,
            "event": event,
            "status": status,
            "error": status >= 400,
            "q": q,
            "tags": {"env": rng.choice(("prod", "prod", "hml")), "origem": rng.choice(("erp", "app", "batch"))},
            "request": {"Datasets": "basic_data", "q": q, "Limit": 1},
            "result": self._result(document, status),
        }
        if status >= 400:
            record["error_message"] = {400: "Parâmetro inválido", 401: "Token inválido", 403: "Sem permissão",
                                       404: "Documento não encontrado", 429: "Limite de requisições excedido"
                                       }.get(status, "Erro interno")
        record.update(fields)
        return record

    def _result(self, document: str, status: int) -> dict[str, Any]:
        size = self.rng.randint(*self.result_bytes)
        return {"Result": [{"MatchKeys": f"doc{{{document}}}", "BasicData": {
            "TaxIdNumber": document, "Name": f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(SURNAMES)}",
            "Notes": "x" * max(0, size - 150)}}] if status < 400 else [], "Status": {"code": status}}

    def records(self, count: int, start: datetime | None = None, step: timedelta = timedelta(milliseconds=7),
                **fields: Any) -> list[dict[str, Any]]:
        """`count` records, timestamps ascending from `start` (default: now minus the span)."""
        start = start or datetime.now(UTC) - step * count
        return [self.record(start + step * n, **fields) for n in range(count)]
