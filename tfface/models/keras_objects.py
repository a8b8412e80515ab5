"""`register_keras_objects`: every tfface class a `.keras` file can name, known to Keras.

A tfface layer, loss or backbone layer registers itself with Keras (`tfface>Name`) when
its module is imported (`tfface.api_export`). `import tfface` calls this for user code;
tfface's commands, which import nothing heavy before their arguments are checked, call it
before they read a `.keras` file.
"""


def register_keras_objects():
    """Imports `tfface.layers`, `tfface.losses` and the built-in backbones (a no-op once
    they are imported)."""
    import tfface.layers  # noqa: F401
    import tfface.losses  # noqa: F401
    from tfface.models import registry

    registry.import_builtin_backbones()
