"""Pure access policy: tokens, the permission catalog, the Grant. No I/O, no web, no SQL."""
