"""What commands print: a table or JSON on stdout, skipped files, progress on stderr."""

import json
import sys


def emit(args, payload, table_lines):
    """Prints `payload` as JSON with `--json`, else the table's lines."""
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif table_lines:
        print("\n".join(table_lines))


def table(rows, header):
    """Lines of a left-aligned text table; [] when there are no rows."""
    if not rows:
        return []
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def box(box):
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


def skipped_lines(skipped):
    lines = [f"skipped {len(skipped)} file(s):"] if skipped else []
    return lines + [f"  {s['path']}: {s['reason']}" for s in skipped]


def progress(items, args, desc):
    """`items`, with a progress bar on stderr for runs over several images."""
    if args.no_progress or len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr)
