"""Exchange Online admin API client, its data model and its errors."""
