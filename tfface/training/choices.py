"""The names a `TrainConfig` field may take, for the fields whose implementation imports
TensorFlow or Keras (TF-free, so that train.py checks them before TensorFlow loads).

The modules that implement them (`strategy`, `schedules`, `objective`) import these
tuples; the mining names are the head table's (`heads.MINING`).
"""

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "piecewise", "constant")
MINING_SCOPES = ("global", "replica")
DISTANCE_METRICS = ("L2", "squared-L2", "angular")
