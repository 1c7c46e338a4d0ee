"""The Stripe emulator: the app and routes (:mod:`.app`), the objects it holds (:mod:`.store`)
and the query parameters each GET declares (:mod:`.params`)."""
