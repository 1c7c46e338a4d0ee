"""The Mailchimp Marketing API emulator: the app and routes (:mod:`.app`), the audiences it holds
(:mod:`.store`) and the JSON it answers with (:mod:`.shapes`)."""
