"""Training: the algorithm catalogue, preprocessing, evaluation and the train_model use case."""
