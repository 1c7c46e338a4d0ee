"""The Givebutter emulator: ``/v1/transactions`` as Givebutter's published OpenAPI describes it
(:mod:`.app`)."""
