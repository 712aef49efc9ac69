"""Operator tools run from a workstation, not deployed: the event sender and Power BI provisioning."""
