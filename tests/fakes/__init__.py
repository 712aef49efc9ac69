"""Hand-written stand-ins for external services (Power BI, ...) that tests run against locally."""
