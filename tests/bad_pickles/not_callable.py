# a bare dict (e.g. saved weights instead of a predict function)
MODEL = {"weights": [0.5, 0.25]}
