"""The Givebutter emulator, as Givebutter's published OpenAPI describes it: the app and routes
(:mod:`.app`), the account it holds (:mod:`.store`), the transactions' published shape in every
state (:mod:`.shapes`) and the Laravel error bodies it answers with (:mod:`.errors`)."""
