"""`tfface detect PHOTOS [--draw OUT]`: every face's box, score, landmarks and size."""

from tfface.cli import arguments
from tfface.cli import output
from tfface.cli import photos
from tfface.cli.command import EXIT_OK
from tfface.cli.command import Command
from tfface.cli.command import CommandError
from tfface.cli.image_files import expand_images


def add_arguments(parser):
    arguments.add_output(parser)
    arguments.add_detection(parser)
    arguments.add_images(parser)
    parser.add_argument(
        "--draw", help="write the photo with boxes here (a folder when there are several photos)"
    )


def check(args):
    arguments.check_detection(args)
    images = expand_images(args.images)
    arguments.check_draw(args, len(images))
    return images


def _size(face):
    return f"{face['quality']['face_size_px']:.0f}"


def run(args, images):
    from tfface.cli.draw import draw_faces

    recognizer = photos.recognizer(args, with_model=False)
    results = []

    def on_faces(path, image, faces):
        results.append({"path": path, "faces": [f.to_dict() for f in faces]})
        if args.draw:
            draw_faces(
                image,
                [f.box for f in faces],
                labels=[f"{f.score:.2f}" for f in faces],
                landmarks=[f.landmarks for f in faces],
            ).save(photos.draw_path(args, path, len(images)))

    skipped = photos.photo_faces(recognizer, images, args, "detect", on_faces)
    rows = [
        [r["path"], i, output.box(f["box"]), f"{f['score']:.3f}", _size(f)]
        for r in results
        for i, f in enumerate(r["faces"])
    ] + [[r["path"], "-", "no face", "", ""] for r in results if not r["faces"]]
    n_faces = sum(len(r["faces"]) for r in results)
    lines = output.table(rows, ["image", "face", "box (x1, y1, x2, y2)", "score", "size px"])
    lines += [f"{n_faces} face(s) in {len(results)} image(s)."] + output.skipped_lines(skipped)
    output.emit(args, {"images": results, "skipped": skipped}, lines)
    if not results:
        raise CommandError(f"no image could be read: {photos.describe_skipped(skipped)}")
    return EXIT_OK


COMMAND = Command(
    name="detect",
    help="find faces: boxes, scores, landmarks, quality",
    add_arguments=add_arguments,
    check=check,
    run=run,
)
