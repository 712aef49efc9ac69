"""The transaction contract, one timestamp definition, envelopes, and the batch validator."""
