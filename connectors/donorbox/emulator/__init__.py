"""The Donorbox emulator: ``/api/v1/donations`` shaped like the published samples (:mod:`.app`)."""
