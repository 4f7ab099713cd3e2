"""`droptrace diagnose`: from what was dropped to why, on the live host."""
