"""Training and evaluation of the classifier's models (`parley train`), apart from the serving code.

sources: the data sets read as labelled rows; labelling: hand labels, mapping, de-duplication, the split;
fitting: sample weights and the fitted pipelines; evaluation: every figure of metrics.json; card: the model
card; plots: the confusion-matrix pictures (matplotlib, from the `train` extra); run: `train` itself.
"""
