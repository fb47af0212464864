"""Account email: templates, the outbox table, and delivery through the outbox or SendGrid."""
