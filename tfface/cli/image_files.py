"""Which files a CLI run reads: image files by extension, from files, folders and identity
trees, decided from the filesystem alone (no TensorFlow)."""

import os

# What PIL decodes and people keep photos in; other files in a folder (notes, .DS_Store,
# JSON reports) are not images and are skipped without being reported as unreadable.
IMAGE_EXTENSIONS = frozenset(
    (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
)


class InputError(ValueError):
    """A command-line input that does not exist or holds no image."""


def is_image_file(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _walk(folder):
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(files):
            if not name.startswith(".") and is_image_file(name):
                yield os.path.join(root, name)


def expand_images(paths):
    """Image files named by `paths` (files, or folders searched recursively), in order.

    A file named explicitly is kept whatever its extension (the reader will report it if it
    does not decode); a missing path or a folder without images raises `InputError`.
    """
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = list(_walk(path))
            if not found:
                raise InputError(
                    f"{path}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})."
                )
            out.extend(found)
        elif os.path.isfile(path):
            out.append(path)
        else:
            raise InputError(f"{path}: no such file or folder.")
    return out


def identity_tree(root):
    """[(identity, [image paths])] of `root/<identity>/<images...>` (images in subfolders of
    an identity folder count for it). Raises `InputError` when `root` has no identity
    folder with images."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: no such folder.")
    tree = []
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if os.path.isdir(path) and not entry.startswith("."):
            images = list(_walk(path))
            if images:
                tree.append((entry, images))
    if not tree:
        raise InputError(
            f"{root}: no identity folders with images (expected {root}/<name>/<image>)."
        )
    return tree
