"""Every trainable model: importing this module imports each model module, and each registers its models
(:mod:`training.registry`). Use ``create_model(name)`` / ``get_spec(name)`` / ``model_names()``.

| module | models |
| --- | --- |
| :mod:`training.study_models` | the original study's CNNs and VGG16 transfer |
| :mod:`training.fast_cnn` | fast_cnn (airbench94 in Keras) |
| :mod:`training.efficientnet_lite` | efficientnet_lite0_transfer |
| :mod:`training.linear_probe` | efficientnet_lite0_linear (the instant model), test_linear, test_transfer |
"""

from training import efficientnet_lite, fast_cnn, linear_probe, study_models  # noqa: F401  (they register their models)
from training.registry import (ModelSpec, TrainingDefaults, UnknownModelError, build_accepts, create_model,  # noqa: F401
                               get_spec, model_names, register_model)
