"""Web front ends on the shared inference core: Streamlit, Gradio, and the Hugging Face Space exporter.

``web.common`` is the only module the apps share; it uses ``cifar10.preprocess.load_image`` (the one
preprocessing function) and ``cifar10.inference.Classifier`` (onnxruntime, never TensorFlow).
"""
