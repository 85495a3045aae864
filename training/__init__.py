"""Keras 3 (TensorFlow backend) training, evaluation and ONNX export. Needs the `training` extra."""
