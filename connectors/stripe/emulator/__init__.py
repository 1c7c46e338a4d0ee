"""The Stripe emulator: the app and routes (:mod:`.app`) and the objects it holds
(:mod:`.store`)."""
