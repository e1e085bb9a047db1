"""Subcommands that compose several packages (top layer: only ``cli`` imports them)."""
