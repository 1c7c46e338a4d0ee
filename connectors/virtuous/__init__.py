"""Virtuous CRM+: sources, sinks and a local emulator of its REST API."""
