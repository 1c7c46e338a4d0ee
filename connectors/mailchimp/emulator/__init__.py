"""The Mailchimp Marketing API emulator: the app and routes (:mod:`.app`), the audiences it holds
(:mod:`.store`), their merge fields and the checks of their values (:mod:`.merge_fields`) and the
JSON it answers with (:mod:`.shapes`)."""
