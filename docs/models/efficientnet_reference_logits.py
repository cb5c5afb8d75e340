"""Write the ImageNet logits that ``efficientnet_lite_pytorch`` (the reference implementation) gives on
real training-split photos, for tests/models/test_efficientnet.py to compare our network against.

    pip install --target /tmp/effref --no-deps efficientnet-lite-pytorch==0.1.0
    PYTHONPATH=/tmp/effref .venv/bin/python docs/models/efficientnet_reference_logits.py

The reference package (Apache-2.0, unmaintained since 2020) is not a dependency: it is needed only to
rewrite ``tests/models/data/efficientnet_reference_logits.json``. Each network runs at its training
size (Lite0 224, Lite2 260) so the reference's padding, fixed for that size, is the one the weights
were trained with. Preprocessing (:func:`center_crop_rgb`) is the test's: shorter side resized to the
size (OpenCV area interpolation), centre crop, RGB in [0, 1], the weights' mean/std.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from efficientnet_lite_pytorch import EfficientNet

from vidcolor.models.efficientnet import EfficientNetLite0Weights, EfficientNetLite2Weights, center_crop_rgb

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "tests" / "models" / "data" / "efficientnet_reference_logits.json"
# Colour photos of the train split (../shared/data/MANIFEST.md), with objects ImageNet has classes for.
IMAGES = ("images/cq100_rest/siberian_tiger.png", "images/color_cq100/king_penguin.png",
          "images/mdn_examples/elephant.jpg", "images/cq100_rest/veggie_pizza.png")



def main() -> None:
    torch.set_num_threads(1)
    out: dict = {"reference": "efficientnet-lite-pytorch==0.1.0 EfficientNet.from_pretrained", "top": 5,
                 "images": list(IMAGES), "models": {}}
    for name, weights in (("efficientnet-lite0", EfficientNetLite0Weights.DEFAULT),
                          ("efficientnet-lite2", EfficientNetLite2Weights.DEFAULT)):
        w = weights.value
        model = EfficientNet.from_pretrained(name, weights_path=str(w.path())).eval()
        x = torch.stack([torch.from_numpy(center_crop_rgb(DATA / p, w.input_size)).permute(2, 0, 1) for p in IMAGES])
        with torch.no_grad():
            logits = model(w.normalize(x))
        values, indices = logits.topk(5, dim=1)
        out["models"][name] = {"size": w.input_size,
                               "top5_indices": indices.tolist(),
                               "top5_logits": [[round(v, 5) for v in row] for row in values.tolist()]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
