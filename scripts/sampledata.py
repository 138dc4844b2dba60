"""A small sample dataset: drawn shapes in label folders (circle, square, triangle).

Real image files made with Pillow, deterministic for a seed, so `make demo` needs no
download. Also drops one broken file in, to show how invalid files are reported.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle")


def draw_shape(shape: str, rng: random.Random, size: int = 160) -> Image.Image:
    bg = tuple(rng.randrange(150, 256) for _ in range(3))
    fg = tuple(rng.randrange(0, 110) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    r = rng.randrange(size // 5, size // 3)
    cx = rng.randrange(r + 4, size - r - 4)
    cy = rng.randrange(r + 4, size - r - 4)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    for _ in range(40):  # a little clutter so no two images are alike
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tuple(rng.randrange(256) for _ in range(3)))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def _label_folders(root: Path, per_label: int, rng: random.Random) -> int:
    """`per_label` drawings in each shape's folder; how many were written."""
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            draw_shape(shape, rng).save(folder / f"{shape}_{i:03d}.jpg", quality=90)
    return per_label * len(SHAPES)


def build(root: Path, per_label: int = 12, unlabelled: int = 3, seed: int = 7) -> int:
    rng = random.Random(seed)
    count = _label_folders(root, per_label, rng)
    new = root / "_unlabeled"
    new.mkdir(parents=True, exist_ok=True)
    for i in range(unlabelled):
        draw_shape(rng.choice(SHAPES), rng).save(new / f"new_{i:03d}.jpg", quality=90)
        count += 1
    (root / "square" / "notes.jpg").write_text("not an image, just a note with a .jpg name\n")
    return count


def build_holdout(root: Path, per_label: int = 4, seed: int = 11) -> int:
    """Images the model never saw, for `repo evaluate --holdout`: new drawings in each
    label folder, and one labelling slip (a circle filed under square/) for the
    evaluation to catch."""
    rng = random.Random(seed)
    count = _label_folders(root, per_label, rng)
    draw_shape("circle", rng).save(root / "square" / "filed_wrong.jpg", quality=90)
    return count + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--per-label", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    n = build(args.root, args.per_label, seed=args.seed)
    print(f"wrote {n} images under {args.root}")


if __name__ == "__main__":
    main()
