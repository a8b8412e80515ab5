"""train.py's flags, derived from `TrainConfig`'s fields and the head table.

One absl flag per config field, with the field's name, section, help text and choices
(default None: "not given", so a flag overrides a `--config` file only when it is given),
one per head flag of `heads.HEAD_FLAGS` (`--scale`, `--margin`, `--margins`), plus
`--config` and `--allow_config_change`. Adding a field to `TrainConfig` adds its flag.
TF-free: train.py parses and resolves its flags before TensorFlow loads.
"""

import dataclasses

from absl import flags

from tfface.training import heads
from tfface.training.schema import TrainConfig
from tfface.training.schema import load_config_file

_FLAG_TYPES = {bool: "bool", int: "integer", float: "float", str: "string"}


def define_flags(flag_values=None):
    """Defines one absl flag per config field (default None: "not given"), the head
    flags, `--config` and `--allow_config_change`."""
    fv = flag_values or flags.FLAGS
    for field in dataclasses.fields(TrainConfig):
        if not field.metadata["flag"]:
            continue
        meta = field.metadata
        default = field.default
        shown = "per-loss policy" if default is None else default
        help_text = f"[{meta['section']}] {meta['help']} (default: {shown})"
        if meta["choices"] is not None:
            flags.DEFINE_enum(field.name, None, list(meta["choices"]), help_text, flag_values=fv)
        else:
            define = getattr(flags, f"DEFINE_{_FLAG_TYPES[field.type]}")
            define(field.name, None, help_text, flag_values=fv)
    for flag in heads.HEAD_FLAGS.values():
        define = flags.DEFINE_list if flag.is_list else flags.DEFINE_float
        define(flag.name, None, f"[objective] {flag.help}", flag_values=fv)
    flags.DEFINE_string(
        "config",
        None,
        "JSON config file ({section: {field: value}}, e.g. a run's config.json); flags "
        "given on the command line override it.",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "allow_config_change",
        [],
        "Fields that may differ from the config.json of the run being resumed (e.g. steps).",
        flag_values=fv,
    )


def config_from_flags(flag_values=None):
    """defaults → `--config` file → flags given; the resolved, validated `TrainConfig`."""
    fv = flag_values or flags.FLAGS
    values = load_config_file(fv.config) if fv.config else {}
    for field in dataclasses.fields(TrainConfig):
        if field.metadata["flag"] and fv[field.name].value is not None:
            values[field.name] = fv[field.name].value
    given = {name: fv[name].value for name in heads.HEAD_FLAGS}
    if any(v is not None for v in given.values()):
        loss = values.get("loss", TrainConfig.loss)
        from_flags = heads.head_kwargs_from_flags(loss, **given)
        values["head_kwargs"] = {**values.get("head_kwargs", {}), **from_flags}
    return TrainConfig(**values).validate()
