"""The Virtuous CRM+ emulator: the app (:mod:`.app`), its routes, store, record shapes, the
transaction import and the gateway (auth, rate limit, faults). ``create_app`` is in :mod:`.app`."""
