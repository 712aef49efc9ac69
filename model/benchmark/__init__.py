"""An independent benchmark after the ULB handbook: its simulator, baseline features and protocol (training side)."""
