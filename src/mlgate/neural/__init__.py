"""Neural networks in PyTorch behind the catalogue's estimator contract (fit / predict /
predict_proba, get_params / set_params), saved as safetensors plus a JSON architecture spec.

Importing this package does not import torch; the estimators do, when they are built.
"""
