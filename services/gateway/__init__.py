"""The gateway kit: the call-record emitter, the aiohttp middleware and what it records, body capture
and redaction, and the recording reverse proxy (`trilha gateway`)."""
