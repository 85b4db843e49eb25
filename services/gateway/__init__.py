"""The gateway side: the aiohttp middleware and the recording reverse proxy."""
