"""Synthetic customers and their transactions, and sending them to Event Hubs by account partition."""
