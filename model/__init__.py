"""The fraud model: its artifact, metadata, reference pipeline, model card and plots; `model.training` makes them."""
