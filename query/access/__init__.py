"""Who may ask: API tokens, authentication, and each company's fair share of the service."""
