"""Clip transforms, and where each one runs.

In DataLoader workers (CPU, per sample):
  - evaluation: scaling to the short side by the decoder while it converts to RGB (one swscale pass, see
    ``VideoReader.get_frames(size=...)``), then crops: array slicing;
  - training: frames converted at their stored size (FFmpeg's converter is several times faster unscaled), then a
    scale-jittered random crop that resamples only the crop's window (:func:`scaled_random_crop`);
  - flips: array slicing, no arithmetic;
  - the published recipes' RandAugment or AugMix (PyTorchVideo's, every frame of a clip alike) and random erasing
    (one box for the whole clip), when configured;
  - SlowFast's pathway split: a frame selection.
  The result stays uint8: a quarter of float32's bytes to move from host to device.
On the device, after transfer (:func:`normalize`, called from ``VideoClassifier.on_after_batch_transfer``):
  - uint8 -> float, scaling to [0, 1] and mean/std normalisation: elementwise over the whole batch, free on a GPU.

Crops, flips and the recipes' augmentations draw from a per-sample ``numpy.random.Generator`` seeded by (seed,
epoch, index) rather than from torch's global generator as torchvision's random transforms do: a sample's
augmentation is then the same whatever the number of workers or ranks, and after resuming a run.
"""

from __future__ import annotations

import numpy as np
import torch

from videoml.data.decoding.reader import frame_batch, output_size
from videoml.errors import VideomlError
from videoml.spec import InputSpec


def spatial_crops(frames: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """``count`` crops (1: centre; 3: start, centre and end of the long side, as PySlowFast tests) ->
    (count, T, s, s, C)."""
    if count not in (1, 3):
        raise ValueError(f"spatial crops must be 1 or 3, got {count}")
    _, h, w, _ = frames.shape
    centre_top, centre_left = (h - size) // 2, (w - size) // 2
    if count == 1:
        offsets = [(centre_top, centre_left)]
    elif w >= h:
        offsets = [(centre_top, 0), (centre_top, centre_left), (centre_top, w - size)]
    else:
        offsets = [(0, centre_left), (centre_top, centre_left), (h - size, centre_left)]
    return torch.stack([frames[:, t:t + size, left:left + size] for t, left in offsets])


def evaluation_frames(video, indices: np.ndarray, spec: InputSpec):
    """The frames ``indices`` (any shape, e.g. (K, T)) of an open video as a ``FrameBatch`` of (*indices.shape, H, W,
    3) with their time stamps, resized for
    evaluation as ``spec.resize`` says: scaled by the decoder while it converts (to the short side ``eval_scale``,
    or to ``eval_size``), or decoded as stored and resized as a published model's own preprocessing does:
    torchvision's resize, bilinear, without antialiasing (torchvision's video weights' transforms, PyTorchVideo's
    ShortSideScale) or with it (the image processors of transformers)."""
    indices = np.asarray(indices)
    target = spec.eval_size or spec.eval_scale
    if spec.resize == "decoder":
        return video.get_clips(indices, size=target)
    # torchvision's v1 functional for its video weights: what their VideoClassification preset calls (antialias=False
    # hard-coded there, to keep the weights' accuracy); v2 for transformers' processors, which call that one
    if spec.resize == "torchvision":
        from torchvision.transforms.functional import resize
    else:
        from torchvision.transforms.v2.functional import resize

    unique, inverse = np.unique(indices, return_inverse=True)  # each distinct frame resized once
    frames = video.get_frames(unique).data.permute(0, 3, 1, 2)
    size = list(target) if spec.eval_size else [target]
    frames = resize(frames, size, antialias=spec.resize == "huggingface").permute(0, 2, 3, 1)
    return frame_batch(frames[torch.from_numpy(inverse.reshape(indices.shape))], indices, video.timestamps)


def evaluation_crops(frames: torch.Tensor, spec: InputSpec, count: int) -> torch.Tensor:
    """:func:`spatial_crops` of (T, H, W, C) evaluation frames; with ``spec.resize == "torchvision"`` the centre one
    is torchvision's centre crop (its offsets round half to even where ours, and transformers', round down)."""
    side = spec.crop_side(train=False)
    crops = spatial_crops(frames, side, count)
    if spec.resize == "torchvision":
        from torchvision.transforms import functional as F

        crops[count // 2] = F.center_crop(frames.permute(0, 3, 1, 2), [side]).permute(0, 2, 3, 1)
    return crops


def _resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, H, W, C) uint8 -> (T, height, width, C), bilinear with antialiasing (as FFmpeg's scaler filters when it
    shrinks), by torch's channels-last uint8 kernel (about 9x faster here than a float round trip)."""
    if (height, width) == tuple(frames.shape[1:3]):
        return frames
    scaled = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                                             antialias=True, align_corners=False)
    return scaled.permute(0, 2, 3, 1)


def scaled_random_crop(frames: torch.Tensor, short_side: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` crop of (T, H, W, C) frames scaled to ``short_side``, the same for every frame.

    The crop's position is drawn on the scaled picture's geometry (top, then left, uniform over every position that
    fits), but only the window it covers is cut from the frames as they are and scaled: a fraction of the pixels to
    resample, and the same picture up to the resampling at the window's edges."""
    _, h, w, _ = frames.shape
    scaled_w, scaled_h = output_size(short_side, w, h)
    top = int(rng.integers(0, scaled_h - size + 1))
    left = int(rng.integers(0, scaled_w - size + 1))
    if (scaled_h, scaled_w) == (h, w):
        return frames[:, top:top + size, left:left + size]
    y0, y1 = round(top * h / scaled_h), round((top + size) * h / scaled_h)
    x0, x1 = round(left * w / scaled_w), round((left + size) * w / scaled_w)
    return _resize(frames[:, y0:y1, x0:x1], size, size)


def horizontal_flip(frames: torch.Tensor) -> torch.Tensor:
    return frames.flip(-2)


def to_model_layout(frames: torch.Tensor) -> torch.Tensor:
    """(..., T, H, W, C) -> (..., C, T, H, W), contiguous."""
    return frames.movedim(-1, -4).contiguous()


def pack_pathways(clip: torch.Tensor, alpha: int | None) -> torch.Tensor | list[torch.Tensor]:
    """SlowFast's input: [slow, fast], the slow pathway every ``alpha``-th frame of the fast one (PyTorchVideo's
    PackPathway rule: evenly spaced indices). Other models: the clip itself. ``clip`` is (..., C, T, H, W)."""
    if not alpha:
        return clip
    return [clip.index_select(-3, slow_frames(clip.shape[-3], alpha).to(clip.device)), clip]


def slow_frames(frames: int, alpha: int) -> torch.Tensor:
    """The frames of a ``frames``-long clip that SlowFast's slow pathway takes (PackPathway's evenly spaced rule)."""
    return torch.linspace(0, frames - 1, max(frames // alpha, 1)).long()


def normalize(video: torch.Tensor | list[torch.Tensor], mean, std,
              memory_format: torch.memory_format | None = None) -> torch.Tensor | list[torch.Tensor]:
    """uint8 (B, ..., C, T, H, W) -> float32 normalised; lists (SlowFast) element by element. With
    ``memory_format``, batches of clips (5-D) are laid out in it (a batch of several crops per clip stays as it is
    until the model flattens it)."""
    if isinstance(video, (list, tuple)):
        return [normalize(v, mean, std, memory_format) for v in video]
    shape = (3, 1, 1, 1)
    m = torch.as_tensor(mean, device=video.device, dtype=torch.float32).view(shape) * 255
    s = torch.as_tensor(std, device=video.device, dtype=torch.float32).view(shape) * 255
    video = (video.float() - m) / s
    return video.contiguous(memory_format=memory_format) if memory_format and video.dim() == 5 else video


def clip_augmentation(rand_augment: dict | None, augmix: dict | None):
    """PyTorchVideo's RandAugment or AugMix, built from its arguments (``sampling_std``: the spread of RandAugment's
    magnitudes, PySlowFast's ``mstd``), or None. Both transform a (T, C, H, W) uint8 clip, every frame alike."""
    from pytorchvideo.transforms import AugMix, RandAugment
    from pytorchvideo.transforms.rand_augment import SAMPLING_RANDAUG_DEFAULT_HPARAS

    if rand_augment is not None and augmix is not None:
        raise VideomlError("data.rand_augment and data.augmix exclude each other (a recipe uses one of them)")
    options, kind = (rand_augment, RandAugment) if rand_augment is not None else (augmix, AugMix)
    if options is None:
        return None
    options = dict(options)
    if "sampling_std" in options:
        options["sampling_hparas"] = {**SAMPLING_RANDAUG_DEFAULT_HPARAS, "sampling_std": options.pop("sampling_std")}
    try:
        return kind(**options)
    except (TypeError, AssertionError, ValueError) as e:
        name = "rand_augment" if kind is RandAugment else "augmix"
        raise VideomlError(f"data.{name}: {options} are not {kind.__name__}'s arguments ({e})") from None


def augmented(frames: torch.Tensor, transform, rng: np.random.Generator) -> torch.Tensor:
    """``transform`` (:func:`clip_augmentation`) on (T, H, W, C) uint8 frames. PyTorchVideo's transforms draw from
    torch's global generator; here they draw from one seeded by the sample's own generator, so that a sample's
    augmentation stays the same whatever the workers (see the module doc)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**63 - 1)))
        return transform(frames.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def random_erasing(frames: torch.Tensor, rng: np.random.Generator, mean, std, area=(0.02, 1 / 3),
                   aspect=(0.3, 3.3)) -> torch.Tensor:
    """Random erasing of (T, H, W, C) uint8 frames as PySlowFast's video recipes do it (``RE_MODE: pixel``, one box
    for every frame): a box of ``area`` of the picture and log-uniform ``aspect`` (torchvision's and timm's draws, up
    to 10 tries) filled with per-pixel noise that is N(0, 1) once normalised by ``mean`` and ``std``. Written here
    because torchvision's RandomErasing fills uint8 frames with constants only, and draws from torch's global
    generator."""
    frames_n, height, width, channels = frames.shape
    for _ in range(10):
        target = rng.uniform(*area) * height * width
        ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        h, w = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < h < height and 0 < w < width:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            noise = rng.standard_normal((frames_n, h, w, channels)) * np.asarray(std) + np.asarray(mean)
            frames = frames.clone()
            frames[:, top:top + h, left:left + w] = torch.from_numpy(np.clip(np.rint(noise * 255), 0, 255)
                                                                     .astype(np.uint8))
            return frames
    return frames
