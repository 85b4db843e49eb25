"""The API logs report: its HTTP API, CSV and print views, stats, and scheduled reports."""
