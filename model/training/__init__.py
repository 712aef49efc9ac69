"""The code that trains the fraud model and writes its artifact, metadata, model card and plots into `model/`."""
