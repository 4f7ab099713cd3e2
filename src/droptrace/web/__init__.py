"""Serving HTTP to scrapers: the server (server.py), the bits of HTTP it speaks (http.py), and
`--web.config.file`'s TLS and basic authentication (config.py)."""
