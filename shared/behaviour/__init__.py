"""Each account's behavioural features (one definition for training and serving) and the state store they live in."""
