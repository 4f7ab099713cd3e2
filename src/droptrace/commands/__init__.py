"""One module per subcommand, over commands/common.py (parser pieces, stopping, the trace loop)."""
