"""Where frames come from, one module per kind: `video_file` (video files, decoded with PyAV), `animated`
(animated GIF / WebP / APNG, decoded with Pillow), `capture`
(webcam, stream URL, through OpenCV; and the openers), `images` (image files and folders); `base` holds
`Source` and its errors.

The drawn synthetic face used by benchmarks and tests: `tracker.sources.synthetic` (imported by name: the
commands need only its spec check).
"""

from tracker.sources.animated import AnimatedImageSource
from tracker.sources.base import (
    DEFAULT_FPS,
    DEFAULT_STALL_TIMEOUT_S,
    NO_FRAME,
    DecodeError,
    Source,
    SourceError,
    SourceStalled,
)
from tracker.sources.capture import (
    CameraSource,
    CaptureSource,
    StreamSource,
    is_url,
    open_camera,
    open_video,
    quiet_opencv,
)
from tracker.sources.images import MIN_IMAGE_SIDE, ImageSource, image_paths
from tracker.sources.video_file import VideoFileSource

__all__ = ["DEFAULT_FPS", "DEFAULT_STALL_TIMEOUT_S", "MIN_IMAGE_SIDE", "NO_FRAME", "AnimatedImageSource",
           "CameraSource", "CaptureSource", "DecodeError", "ImageSource", "Source", "SourceError", "SourceStalled",
           "StreamSource", "VideoFileSource", "image_paths", "is_url", "open_camera", "open_video", "quiet_opencv"]
