"""Proof endpoints of the query service.

- `GET /.well-known/trilha-checkpoint-keys` (no token): every public key checkpoints were ever
  signed with, current first, read from the keys directory (only `.pub` files are read here).
- `GET /proofs/checkpoints?after=SEQ&limit=N`: signed checkpoints with seq > after, oldest first.
- `GET /proofs/consistency?from=SEQ&to=SEQ`: both checkpoints and the RFC 9162 consistency proof
  that the second tree extends the first.
Checkpoints hold no record, but their sizes say how much the deployment stores: a token is needed.
"""

from __future__ import annotations

from aiohttp import web

from query import parsing
from query.access import auth
from query.errors import BadRequest, NotFound, json_response
from query.state import CH, SETTINGS
from services.proofs import keys, ledger, prover

MAX_SEQ = 2**63 - 1


@auth.public
async def public_keys(request: web.Request) -> web.Response:
    found = keys.public_keys(keys.keys_dir(request.app[SETTINGS]))
    return json_response({"keys": [key.as_json() for key in found]})


async def checkpoints(request: web.Request) -> web.Response:
    auth.principal(request)
    parsing.reject_unknown(request.query, ("after", "limit"))
    after = parsing.integer(request.query, "after", 0, MAX_SEQ, 0) or 0
    limit = parsing.integer(request.query, "limit", 1, 1000, 100) or 100
    rows = await ledger.checkpoints(request.app[CH], after, limit)
    return json_response({"checkpoints": [ledger.public(row) for row in rows]})


async def consistency(request: web.Request) -> web.Response:
    auth.principal(request)
    parsing.reject_unknown(request.query, ("from", "to"))
    first_seq = parsing.integer(request.query, "from", 1, MAX_SEQ)
    second_seq = parsing.integer(request.query, "to", 1, MAX_SEQ)
    if first_seq is None or second_seq is None:
        raise BadRequest("send from and to: the sequence numbers of two checkpoints", "from")
    if first_seq > second_seq:
        raise BadRequest("from must not be after to: a later tree extends an earlier one", "from")
    ch = request.app[CH]
    first, second = await ledger.checkpoint(ch, first_seq), await ledger.checkpoint(ch, second_seq)
    for name, row in (("from", first), ("to", second)):
        if row is None:
            raise NotFound("no checkpoint with this sequence number: see GET /proofs/checkpoints", name)
    path = await prover.consistency(ch, first, second)  # type: ignore[arg-type]
    return json_response({"from": ledger.public(first), "to": ledger.public(second), "path": path})  # type: ignore[arg-type]


ROUTES: list[web.RouteDef] = [web.get("/.well-known/trilha-checkpoint-keys", public_keys),
                              web.get("/proofs/checkpoints", checkpoints),
                              web.get("/proofs/consistency", consistency)]
