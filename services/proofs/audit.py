"""`trilha audit`'s walk: what is stored, checked against the signed checkpoints.

Reported, each naming what it is about:
- a checkpoint whose signature fails, that is stored twice, missing from the sequence, whose
  `prev` is not its predecessor's hash, that shrinks the tree, or whose root is not the root of
  the stored leaves (so it does not extend its predecessor, or the leaves were altered);
- a stored tree node that differs from the one the leaves give (proofs through it would fail);
- a record changed (a stored row no longer hashes to its leaf), removed (a leaf without its row
  and without a signed erasure) or added (a row stored before the latest horizon that is no leaf);
- erasures are listed as such, not as problems, when their signed entry matches the leaf.
Everything is read once; the cost is O(records) (`--company` narrows the records walked, never
the tree, which is checked whole).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from query.calls.keyset import instant
from query.calls.keyset import instant_millis as millis
from query.calls.records import to_record
from services.proofs import erasure, ledger, merkle, signing
from services.proofs.leaf import leaf_hash


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    checkpoints: int = 0
    leaves: int = 0
    records: int = 0


async def run(ch: AsyncClient, public_keys: dict[str, bytes], company: str | None = None) -> Report:
    report = Report()
    heads = await ledger.checkpoints(ch)
    report.checkpoints = len(heads)
    _check_chain(heads, public_keys, report)
    committed = {int(h["attempt"]) for h in heads}
    leaves = [row for row in await ledger.all_leaves(ch) if int(row["attempt"]) in committed]
    report.leaves = len(leaves)
    recomputed = _check_tree(heads, leaves, report)
    _check_nodes(await ledger.all_nodes(ch, committed), recomputed, report)
    if heads:
        horizon = millis(heads[-1]["horizon"])
        erasures = await erasure.entries(ch, company)
        await _check_records(ch, leaves, horizon, company, erasures, public_keys, report)
    return report



def _check_chain(heads: list[dict[str, Any]], public_keys: dict[str, bytes], report: Report) -> None:
    previous: dict[str, Any] | None = None
    for head in heads:
        seq = int(head["seq"])
        if not signing.signature_ok(head, public_keys):
            report.problems.append(f"checkpoint {seq}: signature does not verify (rewritten, or unknown key "
                                   f"{head['key_id']})")
        if previous is not None and int(previous["seq"]) == seq:
            report.problems.append(f"checkpoint {seq}: stored more than once")
            continue
        expected_seq = int(previous["seq"]) + 1 if previous else 1
        if seq != expected_seq:
            report.problems.append(f"checkpoint {expected_seq}: missing (the next stored one is {seq})")
        expected_prev = signing.checkpoint_hash(previous) if previous else signing.GENESIS
        if previous is not None and head["prev"] != expected_prev:
            report.problems.append(f"checkpoint {seq}: prev is not checkpoint {previous['seq']}'s hash")
        if previous is not None and int(head["size"]) < int(previous["size"]):
            report.problems.append(f"checkpoint {seq}: the tree shrank from {previous['size']} to {head['size']}")
        previous = head


def _check_tree(heads: list[dict[str, Any]], leaves: list[dict[str, Any]],
                report: Report) -> dict[tuple[int, int], bytes]:
    """Every checkpoint's root against the root of the stored leaves; returns the leaves' nodes."""
    by_index: dict[int, dict[str, Any]] = {}
    for row in leaves:
        if row["leaf_index"] in by_index:
            report.problems.append(f"leaf {row['leaf_index']}: stored twice")
        by_index[row["leaf_index"]] = row
    hashes = []
    for index in range(max(by_index, default=-1) + 1):
        if index not in by_index:
            report.problems.append(f"leaf {index}: missing from proof_leaves")
            hashes.append(b"\x00" * 32)
        else:
            hashes.append(bytes.fromhex(by_index[index]["leaf_hash"]))
    nodes = merkle.tree_nodes(hashes)
    for head in heads:
        size = int(head["size"])
        if size > len(hashes) or merkle.root(size, lambda level, index: nodes[(level, index)]).hex() != head["root"]:
            report.problems.append(f"checkpoint {head['seq']}: its root is not the root of the first {size} stored "
                                   "leaves (it does not extend its predecessor, or leaves were altered)")
    return nodes


def _check_nodes(stored: list[dict[str, Any]], recomputed: dict[tuple[int, int], bytes], report: Report) -> None:
    """Every stored node must be the one the leaves give, and every one the leaves give be stored."""
    seen = set()
    for row in stored:
        key = (row["level"], row["idx"])
        seen.add(key)
        if key in recomputed and recomputed[key].hex() != row["hash"]:
            report.problems.append(f"tree node (level {key[0]}, index {key[1]}): differs from the stored leaves")
    for key in sorted(set(recomputed) - seen):
        report.problems.append(f"tree node (level {key[0]}, index {key[1]}): missing (proofs through it fail)")


async def _check_records(ch: AsyncClient, leaves: list[dict[str, Any]], horizon: int, company: str | None,
                         erasures: dict[tuple[str, str, int], dict[str, Any]], public_keys: dict[str, bytes],
                         report: Report) -> None:
    rows: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in await ledger.stored_rows(ch, company):
        rows[(row["stored_company"], row["query_id"], row["timestamp_ms"])].append(row)
    report.records = len(rows)
    mine = [leaf for leaf in leaves if company is None or leaf["company_id"] == company]
    for leaf in mine:
        key = (leaf["company_id"], leaf["query_id"], leaf["ts"])
        name = f"{key[0]} {key[1]} {instant(key[2])} (leaf {leaf['leaf_index']})"
        copies = rows.pop(key, [])
        if not copies:
            entry = erasures.get(key)
            if entry is not None and erasure.entry_ok(entry, leaf, public_keys):
                report.erased.append(f"erased {name} at {entry['erased_at']}: {entry['reason']}")
            else:
                report.problems.append(f"removed {name}: its leaf is in the tree, its row is gone")
            continue
        stored_at = instant(leaf["stored_ms"])
        if any(leaf_hash(to_record(copy), stored_at).hex() != leaf["leaf_hash"] for copy in copies):
            report.problems.append(f"changed {name}: the stored row no longer hashes to its leaf")
    for key, copies in rows.items():
        if min(copy["stored_ms"] for copy in copies) < horizon:
            report.problems.append(f"added {key[0]} {key[1]} {instant(key[2])}: stored before checkpoint horizon "
                                   f"{instant(horizon)} but no leaf of the tree")

