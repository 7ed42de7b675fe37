# an instance with __call__(self, live_features): signature() drops self, 1 parameter
class RankModel:
    def __init__(self, column):
        self.column = column

    def __call__(self, live_features):
        return live_features[self.column].rank(pct=True).to_frame("prediction")


MODEL = RankModel("feature_0002")
