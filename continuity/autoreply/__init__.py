"""The e-mail auto-responder: RFC 3834 loop safety, language choice, IMAP watch and SMTP answers."""
