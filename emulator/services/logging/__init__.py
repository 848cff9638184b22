"""Cloud Logging: the API (`service`) and its filter language (`filter`), the only user of it."""
