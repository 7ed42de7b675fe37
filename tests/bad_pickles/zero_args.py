def predict():
    return None


MODEL = predict
