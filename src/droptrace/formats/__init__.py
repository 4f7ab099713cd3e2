"""Output formats: text lines, JSON lines, pcapng, and the one helper that writes bytes out."""
