"""What a model needs to be used: the contract between training, export and the runtime.

The same `ModelMeta` is written into ONNX `metadata_props` and into checkpoints' configs,
and read back by the runtime, which never guesses settings from file names or shapes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core import __version__
from core.errors import InputError

POINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_center")
_MIRROR_PARTNER = {"right_eye": "left_eye", "left_eye": "right_eye"}  # the subject's sides swap in a mirror


def mirrored_order(point_names: tuple[str, ...] = POINT_NAMES) -> tuple[int, ...]:
    """Index order of a mirrored face's points: point i of the mirror image is the original's point
    `order[i]` (right and left eye change places; nose and mouth stay)."""
    names = list(point_names)
    return tuple(names.index(_MIRROR_PARTNER.get(name, name)) for name in names)


MIRRORED_ORDER: tuple[int, ...] = mirrored_order()
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Landmark crops are squares around the face box, this many times its longer side.
LANDMARK_CROP_SCALE = 1.3
DATA_TERMS = "trained on YouTube-Faces keypoints and 300-W HELEN: non-commercial research use only"
# The data sets each reader format holds, as the terms name them; every one is for non-commercial research
# only (../shared/data/README.md and each set's own README).
DATA_SET_NAMES = {"ytf-csv": "YouTube-Faces keypoints", "300w": "300-W HELEN", "mtfl": "MTFL",
                  "caltech": "Caltech 10k WebFaces", "aflw": "AFLW", "dlib-xml": "dlib's example faces"}


def data_terms(formats) -> str:
    """The `data_terms` of a model trained on data of these reader formats (in the order given; unknown
    names are quoted as they are): "trained on A, B and C: non-commercial research use only"."""
    names = list(dict.fromkeys(DATA_SET_NAMES.get(f, f) for f in formats))
    if not names:
        return DATA_TERMS
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"trained on {listed}: non-commercial research use only"

_PREFIX = "facetrack."
MODEL_KINDS = ("landmarks", "box", "detector")
_REQUIRED = ("kind", "model", "input_size", "layout", "color", "mean", "std", "output", "coords")


class MetadataError(InputError):
    """A model file lacks what the runtime needs to use it."""


@dataclass(frozen=True)
class ModelMeta:
    """How to feed a model and read its output."""

    kind: str  # "landmarks" | "box" | "detector"
    model: str  # architecture name, e.g. "nalbert"
    input_size: int  # square input side in pixels
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output: str = ""  # layout of the output vector
    coords: str = ""  # coordinate convention of the output
    point_names: tuple[str, ...] = POINT_NAMES
    crop_scale: float = LANDMARK_CROP_SCALE
    quality: bool = False  # landmarks: the output row ends with a face-quality logit after the points
    point_scores: bool = False  # landmarks: ...and then with one score 0..1 per point
    # landmarks: (P x 2) flattened, each point's mean offset (across, down) in the face frame, in units of the
    # inter-ocular distance, measured on training faces (`facetrack.calibrate`); the runtime subtracts it
    point_offsets: tuple[float, ...] = ()
    pad_multiple: int = 0  # detector: the letterboxed input is padded to multiples of this (its stride)
    data_terms: str = DATA_TERMS
    version: str = __version__
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def for_kind(cls, kind: str, model: str, input_size: int, **kwargs) -> "ModelMeta":
        """The standard metadata of a landmark or box model."""
        if kind == "landmarks":
            output = "x0,y0,x1,y1,... for point_names, in order"
            if kwargs.get("quality"):
                output += ", then a face-quality logit"
            if kwargs.get("point_scores"):
                output += ", then a score 0..1 per point"
            coords = "crop_normalized: 0..1 of the input crop, x right, y down"
        elif kind == "box":
            output = "x1,y1,x2,y2,presence_logit"
            coords = "letterbox_normalized: 0..1 of the letterboxed square input"
        elif kind == "detector":
            output = ("(B, N, 13): one row per output cell: score (0..1, 0 where not a local peak), "
                      "x1,y1,x2,y2, then x,y for point_names")
            coords = ("input_px: pixels of the input, the frame scaled so its longer side is input_size "
                      "and padded right and bottom to multiples of pad_multiple")
        else:
            raise MetadataError(f"unknown model kind {kind!r} (expected {', '.join(MODEL_KINDS)})")
        return cls(kind=kind, model=model, input_size=int(input_size), output=output, coords=coords, **kwargs)

    def to_props(self) -> dict[str, str]:
        """Flat string key/values for ONNX metadata_props."""
        props = {
            "kind": self.kind,
            "model": self.model,
            "input_size": str(self.input_size),
            "layout": self.layout,
            "color": self.color,
            "mean": ",".join(f"{v:.6g}" for v in self.mean),
            "std": ",".join(f"{v:.6g}" for v in self.std),
            "output": self.output,
            "coords": self.coords,
            "point_names": ",".join(self.point_names),
            "crop_scale": f"{self.crop_scale:.6g}",
            "quality": "1" if self.quality else "0",
            "point_scores": "1" if self.point_scores else "0",
            "point_offsets": ",".join(f"{v:.6g}" for v in self.point_offsets),
            "pad_multiple": str(self.pad_multiple),
            "data_terms": self.data_terms,
            "version": self.version,
        }
        props.update({k: str(v) for k, v in self.extra.items()})
        return {_PREFIX + k: v for k, v in props.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> "ModelMeta":
        """Read metadata written by `to_props`; a missing required key is a MetadataError."""
        own = {k[len(_PREFIX):]: v for k, v in props.items() if k.startswith(_PREFIX)}
        missing = [k for k in _REQUIRED if k not in own]
        if missing:
            raise MetadataError(
                f"{source} lacks facetrack metadata {', '.join(missing)}: re-export it with `facetrack export`"
            )
        try:
            mean = tuple(float(v) for v in own["mean"].split(","))
            std = tuple(float(v) for v in own["std"].split(","))
            input_size = int(own["input_size"])
            crop_scale = float(own.get("crop_scale", LANDMARK_CROP_SCALE))
            pad_multiple = int(own.get("pad_multiple", "0"))
            point_offsets = tuple(float(v) for v in own.get("point_offsets", "").split(",") if v.strip())
        except ValueError as exc:
            raise MetadataError(f"{source} has malformed facetrack metadata: {exc}") from None
        if own["kind"] not in MODEL_KINDS:
            raise MetadataError(f"{source} has unknown model kind {own['kind']!r}")
        if own["layout"] != "NCHW" or own["color"] != "RGB" or len(mean) != 3 or len(std) != 3:
            raise MetadataError(f"{source} uses an input convention this runtime does not support")
        known = set(_REQUIRED) | {"point_names", "crop_scale", "quality", "point_scores", "point_offsets",
                                  "pad_multiple", "data_terms", "version"}
        return cls(
            kind=own["kind"],
            model=own["model"],
            input_size=input_size,
            layout=own["layout"],
            color=own["color"],
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            output=own["output"],
            coords=own["coords"],
            point_names=tuple(own.get("point_names", ",".join(POINT_NAMES)).split(",")),
            crop_scale=crop_scale,
            quality=own.get("quality", "0") == "1",
            point_scores=own.get("point_scores", "0") == "1",
            point_offsets=point_offsets,
            pad_multiple=pad_multiple,
            data_terms=own.get("data_terms", ""),
            version=own.get("version", ""),
            extra={k: v for k, v in own.items() if k not in known},
        )

    @property
    def output_width(self) -> int:
        """Values per output row: 5 for a box model (x1,y1,x2,y2,presence logit); 5 + 2 per point for a
        detector (score, box, points; one row per output cell); 2 per point for a landmark model, plus 1
        when it also gives a face-quality logit, plus 1 per point when it gives point scores."""
        if self.kind == "box":
            return 5
        if self.kind == "detector":
            return 5 + 2 * len(self.point_names)
        n = len(self.point_names)
        return 2 * n + (1 if self.quality else 0) + (n if self.point_scores else 0)

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        d = asdict(self)
        d["mean"], d["std"], d["point_names"] = list(self.mean), list(self.std), list(self.point_names)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelMeta":
        """Inverse of `to_dict`."""
        d = dict(d)
        for key in ("mean", "std", "point_names", "point_offsets"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
