"""The model, its explanations, feature encoding, and scoring a batch or an /api/score request."""
