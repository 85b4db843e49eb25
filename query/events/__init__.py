"""The Events API (`POST /events`, the seed's `POST /log`): parameters, SQL, reading, HTTP handlers."""
