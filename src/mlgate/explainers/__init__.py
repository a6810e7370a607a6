"""Explaining rows: per-row contributions that sum to the prediction (closed forms for linear
models, TreeSHAP for trees and boosters, sampled Shapley values for the rest). Above the runtime
(it explains a loaded model), below serving and training, which both ask it."""
