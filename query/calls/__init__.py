"""Reading stored calls, one way for every reader: the keyset, the cursor, the row converter, de-duplication."""
