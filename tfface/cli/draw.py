"""`draw_faces`: the photo with each face's box, landmarks and label, for `--draw`."""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

_KNOWN = (40, 200, 60)
_UNKNOWN = (230, 60, 40)


def draw_faces(image, boxes, labels=None, landmarks=None, known=None):
    """Returns a PIL image of uint8 RGB `image` with boxes, optional five-point landmarks and
    labels drawn; `known[i]` False draws face i in red (e.g. "unknown"), else green."""
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(im)
    width = max(2, round(max(im.size) / 400))
    font_size = max(12, round(max(im.size) / 40))
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    for i, box in enumerate(boxes):
        color = _UNKNOWN if known is not None and not known[i] else _KNOWN
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        if landmarks is not None:
            r = width
            for x, y in landmarks[i]:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        if labels is not None and labels[i]:
            text = str(labels[i])
            left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
            ty = y1 - (bottom - top) - 2 * width if y1 > bottom - top + 2 * width else y2
            draw.rectangle(
                [x1, ty, x1 + right - left + 2 * width, ty + bottom - top + 2 * width], fill=color
            )
            draw.text((x1 + width, ty + width - (top - y1)), text, fill=(255, 255, 255), font=font)
    return im
