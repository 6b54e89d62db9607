"""The course project's landmark nets, a modern BatchNorm landmark net and the separate box regressor.

Each model has a frozen config dataclass; `build_model(name, config)` rebuilds it, and a checkpoint
is a plain dict (`model`, `config`, `state_dict`, `meta`, training info) loaded with weights_only=True.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from core.detector_net import PAD_MULTIPLE, CenterFaceNet, DetectorConfig
from core.errors import InputError, first_line
from core.meta import ModelMeta


# ---------------------------------------------------------------- configs
@dataclass(frozen=True)
class LandmarkConfig:
    """Shared config of the landmark nets."""

    input_size: int = 128
    num_points: int = 4
    dropout: float = 0.25
    quality: bool = False  # the last layer also gives a face-quality logit: 2P + 1 outputs

    @property
    def outputs(self) -> int:
        """Values per output row: x, y per point, then the quality logit when `quality`."""
        return 2 * self.num_points + (1 if self.quality else 0)


@dataclass(frozen=True)
class ResNetLandmarkConfig(LandmarkConfig):
    """The modern landmark net: ResNet basic blocks with BatchNorm."""

    widths: tuple[int, ...] = (32, 64, 128, 256)
    head_channels: int = 32
    hidden: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class SimCCLandmarkConfig(ResNetLandmarkConfig):
    """The ResNet backbone with a SimCC head: each point's x and y as 1-D classifications over bins."""

    split_ratio: float = 2.0  # bins per input pixel (SimCC's k; Li et al., ECCV 2022)
    margin: float = 0.1  # the bins also cover this share of the crop beyond each edge
    point_channels: int = 8  # feature channels per point before its token
    # where the quality logit comes from: "tokens" (a linear layer on the P point tokens, which know where
    # each point's evidence lies) or "pooled" (on the globally pooled features; the first runs, whose
    # configs lack this field: quality accuracy 86 % on validation against 99 % for the regression net)
    quality_source: str = "tokens"
    # the output row also ends with P point scores (`SimCCLandmarks.point_scores`) after the quality logit
    point_scores: bool = True


@dataclass(frozen=True)
class BoxConfig:
    """The box regressor: a small strided BatchNorm CNN on the letterboxed frame."""

    input_size: int = 128
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    hidden: int = 256
    dropout: float = 0.1


def _conv_stack(channels: list[int], kernels: list[int], padding: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in, c_out, k in zip(channels[:-1], channels[1:], kernels):
        layers += [nn.Conv2d(c_in, c_out, k, padding=padding), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def _flat_size(features: nn.Module, input_size: int) -> int:
    try:
        with torch.no_grad():
            return int(features(torch.zeros(1, 3, input_size, input_size)).numel())
    except RuntimeError:
        raise InputError(f"input size {input_size} px is too small for this model") from None


# ---------------------------------------------------------------- course project models
class NalbertNet(nn.Module):
    """The course project's winner: 5 conv+ReLU+max-pool blocks (32..512, k 5,3,3,3,1), FC 1024-512-2P."""

    has_box_head = False

    def __init__(self, config: LandmarkConfig):
        super().__init__()
        self.config = config
        self.features = _conv_stack([3, 32, 64, 128, 256, 512], [5, 3, 3, 3, 1], padding=0)
        flat = _flat_size(self.features, config.input_size)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 1024), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
            nn.Linear(1024, 512), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
            nn.Linear(512, config.outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _ConvWithBoxHead(nn.Module):
    """A conv stack, a shared FC 1024 trunk, and two heads: points (2P, + a quality logit) and a box (4)."""

    has_box_head = True

    def __init__(self, config: LandmarkConfig, features: nn.Sequential):
        super().__init__()
        self.config = config
        self.features = features
        flat = _flat_size(self.features, config.input_size)
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(flat, 1024), nn.ReLU(inplace=True),
                                   nn.Dropout(config.dropout))
        self.points_head = nn.Linear(1024, config.outputs)
        self.box_head = nn.Linear(1024, 4)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(self.features(x))
        return self.points_head(h), self.box_head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[0]


class Net(_ConvWithBoxHead):
    """The course project's first net: conv 32..512 (k 5,3,3,3,1) with max-pool, FC heads for box and points."""

    def __init__(self, config: LandmarkConfig):
        super().__init__(config, _conv_stack([3, 32, 64, 128, 256, 512], [5, 3, 3, 3, 1], padding=0))


class FacialLandmarkAndBBoxModel(_ConvWithBoxHead):
    """The course project's joint model: four 3x3 conv blocks 64..512 (pad 1), FC 1024, heads 2P and 4."""

    def __init__(self, config: LandmarkConfig):
        super().__init__(config, _conv_stack([3, 64, 128, 256, 512], [3, 3, 3, 3], padding=1))


# ---------------------------------------------------------------- modern models
def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def _stage(c_in: int, c_out: int, stride: int) -> BasicBlock:
    down = None
    if stride != 1 or c_in != c_out:
        down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    return BasicBlock(c_in, c_out, stride=stride, downsample=down)


def _resnet_backbone(widths: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """Stem (stride 2) + one basic block per width (the first at stride 1, the others 2): (module, channels)."""
    blocks: list[nn.Module] = [_conv_bn(3, widths[0], 2)]
    c_in = widths[0]
    for i, c_out in enumerate(widths):
        blocks.append(_stage(c_in, c_out, 1 if i == 0 else 2))
        c_in = c_out
    return nn.Sequential(*blocks), c_in


class ResNetLandmarks(nn.Module):
    """Modern landmark net: stem + ResNet basic blocks with BatchNorm, a spatial 1x1 head, FC to 2P."""

    has_box_head = False

    def __init__(self, config: ResNetLandmarkConfig):
        super().__init__()
        self.config = config
        backbone, c_in = _resnet_backbone(config.widths)
        self.features = nn.Sequential(*backbone, nn.Conv2d(c_in, config.head_channels, 1, bias=False),
                                      nn.BatchNorm2d(config.head_channels), nn.ReLU(inplace=True))
        flat = _flat_size(self.features, config.input_size)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(config.dropout), nn.Linear(config.hidden, config.outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# Half-width of the window in which `SimCCLandmarks.point_scores` sums a point's probability, in input pixels
# (2 px of a 96-px crop: about 6 % of the inter-ocular distance of a face at the nominal crop scale).
POINT_SCORE_WINDOW_PX = 2.0


class SimCCLandmarks(nn.Module):
    """The resnet backbone with a SimCC-style head (Li et al., "SimCC", ECCV 2022; RTMPose's head).

    Each point gets `point_channels` feature maps of its own, flattened into a token; one shared MLP
    turns every token into a hidden vector, and each point's own linear layers turn it into logits over
    `bins` x positions and `bins` y positions spanning the crop plus `margin` on each side. `forward`
    decodes them by soft-argmax (softmax, then the expected bin centre), so its output is the same
    (B, 2P [+1]) crop-normalised rows as the regression nets' and the runtime and ONNX graph need
    nothing new; `bin_logits` gives the logits that training also scores.
    """

    has_box_head = False

    def __init__(self, config: SimCCLandmarkConfig):
        super().__init__()
        self.config = config
        k = config.num_points
        self.features, c = _resnet_backbone(config.widths)
        self.point_maps = nn.Sequential(nn.Conv2d(c, k * config.point_channels, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(k * config.point_channels), nn.ReLU(inplace=True))
        grid = _flat_size(self.features, config.input_size) // c  # H*W of the last feature map
        self.token = nn.Sequential(nn.Linear(config.point_channels * grid, config.hidden), nn.ReLU(inplace=True),
                                   nn.Dropout(config.dropout))
        n_bins = self.num_bins
        # each point's own token -> bins layers, (P, hidden, bins) weights and (P, bins) biases per axis
        bound = config.hidden ** -0.5
        self.bins_weight = nn.Parameter(torch.empty(2, k, config.hidden, n_bins).uniform_(-bound, bound))
        self.bins_bias = nn.Parameter(torch.zeros(2, k, n_bins))
        if config.quality_source not in ("tokens", "pooled"):
            raise ValueError(f"quality_source must be 'tokens' or 'pooled', not {config.quality_source!r}")
        quality_in = k * config.hidden if config.quality_source == "tokens" else c
        self.quality_head = nn.Linear(quality_in, 1) if config.quality else None
        lo, hi = -config.margin, 1.0 + config.margin
        self.register_buffer("bin_centers", lo + (torch.arange(n_bins) + 0.5) * (hi - lo) / n_bins,
                             persistent=False)

    @property
    def num_bins(self) -> int:
        """Bins per axis: `split_ratio` per input pixel over the crop and its margins."""
        c = self.config
        return int(round(c.input_size * c.split_ratio * (1 + 2 * c.margin)))

    def bin_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x logits (B, P, bins), y logits (B, P, bins), quality logit (B,) or None)."""
        f = self.features(x)
        tokens = self.token(self.point_maps(f).flatten(1).unflatten(1, (self.config.num_points, -1)))
        quality = None
        if self.quality_head is not None:
            pooled = tokens.flatten(1) if self.config.quality_source == "tokens" else f.mean(dim=(2, 3))
            quality = self.quality_head(pooled)[:, 0]
        t = tokens[:, :, None, :]  # (B, P, 1, hidden) @ (P, hidden, bins) -> (B, P, 1, bins)
        logits_x = (t @ self.bins_weight[0])[:, :, 0] + self.bins_bias[0]
        logits_y = (t @ self.bins_weight[1])[:, :, 0] + self.bins_bias[1]
        return logits_x, logits_y, quality

    def init_mean_points(self, mean_points: torch.Tensor, spread: float = 0.08) -> None:
        """Start each point's bins as a wide Gaussian (std `spread`, crop-normalised) around its mean
        position (P, 2), as `init_points_bias` starts the regression nets at the mean face."""
        with torch.no_grad():
            self.bins_weight.mul_(0.1)
            m = mean_points.reshape(-1, 2).to(self.bins_bias)
            for axis in range(2):
                self.bins_bias[axis] = -0.5 * ((self.bin_centers[None] - m[:, axis:axis + 1]) / spread) ** 2

    def decode(self, logits_x: torch.Tensor, logits_y: torch.Tensor) -> torch.Tensor:
        """Soft-argmax: (B, P, bins) logits per axis -> (B, 2P) crop-normalised x0, y0, x1, y1, ..."""
        px = torch.softmax(logits_x, dim=-1) @ self.bin_centers
        py = torch.softmax(logits_y, dim=-1) @ self.bin_centers
        return torch.stack([px, py], dim=-1).flatten(1)  # no traced batch size: the ONNX batch stays dynamic

    def point_scores(self, logits_x: torch.Tensor, logits_y: torch.Tensor) -> torch.Tensor:
        """(B, P) scores in 0..1: per point, the geometric mean over x and y of the largest probability
        mass in a window of +-`POINT_SCORE_WINDOW_PX` input pixels of its bins (RTMPose scores a keypoint
        by its SimCC peak; a window makes the score independent of the bin width). A point the model sees
        gets a sharp peak (near 1); a covered or out-of-crop point, whose position the model guesses from
        the rest of the face, a wide one (low)."""
        k = 2 * int(round(POINT_SCORE_WINDOW_PX * self.config.split_ratio)) + 1
        masses = [F.avg_pool1d(torch.softmax(logits, dim=-1), k, stride=1, padding=k // 2,
                               count_include_pad=True).amax(dim=-1) * k for logits in (logits_x, logits_y)]
        return torch.sqrt((masses[0] * masses[1]).clamp(0.0, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2P [+1] [+P]): crop-normalised x, y per point, then the quality logit (`quality`), then the
        point scores (`point_scores`)."""
        logits_x, logits_y, quality = self.bin_logits(x)
        parts = [self.decode(logits_x, logits_y)]
        if quality is not None:
            parts.append(quality[:, None])
        if self.config.point_scores:
            parts.append(self.point_scores(logits_x, logits_y))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


class BoxRegressor(nn.Module):
    """Separate face-box model: letterboxed frame in, (x1, y1, x2, y2) in 0..1 plus a presence logit out."""

    def __init__(self, config: BoxConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in config.widths:
            layers += [_conv_bn(c_in, c_out, 2), _conv_bn(c_out, c_out, 1)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        flat = _flat_size(self.features, config.input_size)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(config.dropout), nn.Linear(config.hidden, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        # box as sigmoid-squashed corners so it always lies in the frame; logit left raw
        return torch.cat([torch.sigmoid(out[:, :4]), out[:, 4:]], dim=1)


# ---------------------------------------------------------------- registry and checkpoints
MODELS: dict[str, tuple[type[nn.Module], type, str]] = {
    "nalbert": (NalbertNet, LandmarkConfig, "landmarks"),
    "net": (Net, LandmarkConfig, "landmarks"),
    "landmark-bbox": (FacialLandmarkAndBBoxModel, LandmarkConfig, "landmarks"),
    "resnet": (ResNetLandmarks, ResNetLandmarkConfig, "landmarks"),
    "resnet-simcc": (SimCCLandmarks, SimCCLandmarkConfig, "landmarks"),
    "box": (BoxRegressor, BoxConfig, "box"),
    "centernet": (CenterFaceNet, DetectorConfig, "detector"),
}
LANDMARK_MODELS = tuple(k for k, v in MODELS.items() if v[2] == "landmarks")
# What a saved config without a later field meant: the value before the field existed, not today's default.
SAVED_BEFORE_FIELD: dict[str, dict] = {"resnet-simcc": {"quality_source": "pooled"}}


def model_kind(name: str) -> str:
    """'landmarks', 'box' or 'detector'."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name][2]


def make_config(name: str, **overrides):
    """The config dataclass of a model with some fields overridden (unknown ones ignored)."""
    cls = MODELS[name][1] if name in MODELS else None
    if cls is None:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    names = {f.name for f in fields(cls)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if k in names}
    return cls(**values)


def build_model(name: str, config=None) -> nn.Module:
    """Build a model from its name and config (dataclass or plain dict)."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    model_cls, config_cls, _ = MODELS[name]
    if config is None:
        config = config_cls()
    elif isinstance(config, dict):
        config = make_config(name, **{**SAVED_BEFORE_FIELD.get(name, {}), **config})
    return model_cls(config)


def model_meta(name: str, config) -> ModelMeta:
    """The runtime metadata of a model (`quality` set for a landmark model whose rows end with a
    face-quality logit, `point_scores` for one whose rows end with point scores)."""
    kind = model_kind(name)
    if kind == "landmarks":
        return ModelMeta.for_kind(kind, name, config.input_size, quality=bool(getattr(config, "quality", False)),
                                  point_scores=bool(getattr(config, "point_scores", False)))
    if kind == "detector":
        lo, hi = config.face_side_px
        return ModelMeta.for_kind(kind, name, config.input_size, pad_multiple=PAD_MULTIPLE,
                                  extra={"face_side_px": f"{lo:g},{hi:g}"})
    return ModelMeta.for_kind(kind, name, config.input_size)


def aligned_meta(meta: ModelMeta, model: nn.Module) -> ModelMeta:
    """`meta` (a checkpoint's stored metadata) with the output layout its model really has: a landmark
    model's point scores need no weights, so a checkpoint saved before they existed stores a meta without
    them and a config that now gives them."""
    if meta.kind != "landmarks":
        return meta
    return replace(meta, point_scores=bool(getattr(model.config, "point_scores", False)))


def points_layer(model: nn.Module) -> nn.Linear:
    """The final Linear layer that outputs the points (and the quality logit) of a landmark model."""
    return model.points_head if hasattr(model, "points_head") else model.head[-1]


def init_points_bias(model: nn.Module, mean_points: torch.Tensor, quality_logit: float = 0.0) -> None:
    """Start the point outputs at the mean face (else Adam needs hundreds of steps just to reach it) and
    a quality logit, when the model has one, at `quality_logit` (a SimCC model: its bins around the mean
    face, `SimCCLandmarks.init_mean_points`)."""
    if isinstance(model, SimCCLandmarks):
        model.init_mean_points(mean_points)
        if model.quality_head is not None:
            with torch.no_grad():
                model.quality_head.bias.fill_(quality_logit)
        return
    layer = points_layer(model)
    points = mean_points.reshape(-1).to(layer.bias)
    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias[:len(points)].copy_(points)
        layer.bias[len(points):].fill_(quality_logit)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_checkpoint(name: str, model: nn.Module, half: bool = False, **info) -> dict:
    """A plain-dict checkpoint; `half` stores float tensors as fp16 (restored to fp32 on load)."""
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    config = asdict(model.config)
    return {"format": "facetrack-checkpoint-1", "model": name, "config": config, "state_dict": state,
            "meta": model_meta(name, model.config).to_dict(), **info}


def save_checkpoint(path: str | Path, ckpt: dict) -> None:
    """Write atomically (a crash never leaves half a file)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict with weights_only=True (never unpickling code); anything else is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):  # torch.save's zip archive, or an older pickle
        raise InputError(f"{path}: not a PyTorch file, so not a facetrack checkpoint (a checkpoint is what "
                         "training writes: RUN/best.pt; an ONNX graph is named by its weights folder's manifest)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle payloads, truncation, foreign files
        text = str(exc).strip()
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            reason = "it holds pickled Python objects, which are never loaded; re-save it with facetrack"
        elif "zip archive" in text or "central directory" in text or isinstance(exc, EOFError):
            reason = "truncated, or not a PyTorch file; train or copy it again"
        else:
            reason = first_line(exc, 160)
        raise InputError(f"{path}: not a loadable facetrack checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not {"model", "state_dict", "config"} <= set(ckpt):
        raise InputError(f"{path}: not a facetrack checkpoint (expected a dict with model, config, state_dict)")
    if not isinstance(ckpt["model"], str) or not isinstance(ckpt["config"], dict) or \
            not isinstance(ckpt["state_dict"], dict) or \
            not all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise InputError(f"{path}: malformed facetrack checkpoint (model, config or state_dict of the wrong type)")
    return ckpt


def load_model(path: str | Path, expect_kind: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint file (fp32, eval mode); returns (model, checkpoint)."""
    ckpt = read_checkpoint(path)
    name = ckpt["model"]
    if name not in MODELS:
        raise InputError(f"{path}: unknown model {name!r} in checkpoint (known: {', '.join(MODELS)})")
    if expect_kind and model_kind(name) != expect_kind:
        raise InputError(f"{path}: holds a {model_kind(name)} model ({name}), expected a {expect_kind} model; "
                         "check which file the weights manifest names for it")
    try:
        model = build_model(name, ckpt["config"])
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError) as exc:
        raise InputError(f"{path}: its config cannot build model {name} ({first_line(exc, 160)})") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise InputError(f"{path}: weights do not fit model {name} ({detail[:160]}); the checkpoint is damaged "
                         "or from another version") from None
    model.eval()
    return model, ckpt
