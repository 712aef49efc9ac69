"""Confirmed outcomes (labels): their contract, their store, and their aggregation into merchant risk states."""
