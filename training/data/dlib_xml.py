"""dlib imglab XML: `<image file>` with `<box top left width height>` each holding 68 `<part>`s."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from training.data.common import image_size, make_sample
from training.data.samples import SKIP_BAD_VALUES, SKIP_MISSING_POINT, DatasetError, LoadResult, four_points_from_68

FORMAT = "dlib-xml"
SKIP_IGNORED_BOX = "ignored_box"
_PART_NAMES = {f"{i:02d}" for i in range(68)}


def parse_xml(xml_path: Path) -> ET.Element:
    """The root element of an XML file; raise DatasetError when it is malformed."""
    try:
        return ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{xml_path}: not a readable dlib XML ({exc})") from None


def has_parts(tree: ET.Element) -> bool:
    """True when some box of the XML holds landmarks."""
    return tree.find(".//image/box/part") is not None


def landmark_xmls(root: Path) -> list[tuple[Path, ET.Element]]:
    """The XML files (root itself, or every *.xml in the folder) that hold at least one `<part>`."""
    paths = [root] if root.is_file() else sorted(root.glob("*.xml"))
    parsed = [(path, parse_xml(path)) for path in paths]
    found = [(path, tree) for path, tree in parsed if has_parts(tree)]
    if not found:
        raise DatasetError(f"{root}: no dlib XML with landmarks (<part>) found")
    return found


def box_xyxy_of(box: ET.Element) -> np.ndarray:
    """The xyxy box of a `<box top left width height>` element (ValueError when malformed)."""
    top, left = float(box.attrib["top"]), float(box.attrib["left"])
    width, height = float(box.attrib["width"]), float(box.attrib["height"])
    return np.array([left, top, left + width, top + height], dtype=np.float32)


def points68_of(box: ET.Element) -> np.ndarray | None:
    """The (68, 2) points of a box in iBUG order, or None unless it has exactly parts 00..67."""
    parts = box.findall("part")
    names = [p.attrib.get("name", "") for p in parts]
    if len(parts) != 68 or set(names) != _PART_NAMES:
        return None
    by_index = {int(p.attrib["name"]): (float(p.attrib["x"]), float(p.attrib["y"])) for p in parts}
    return np.array([by_index[i] for i in range(68)], dtype=np.float32)


def load(root: Path) -> LoadResult:
    """Read every labelled box of the landmark XMLs; bad boxes are skipped and counted."""
    root = Path(root)
    result = LoadResult(FORMAT, str(root))
    sizes: dict[Path, tuple[int, int] | str] = {}
    for xml_path, tree in landmark_xmls(root):
        for image in tree.iter("image"):
            path = xml_path.parent / image.attrib.get("file", "")
            for box in image.findall("box"):
                if box.attrib.get("ignore", "0") not in ("0", ""):
                    result.skipped[SKIP_IGNORED_BOX] += 1
                    continue
                try:
                    box_xyxy = box_xyxy_of(box)
                    pts68 = points68_of(box)
                except (KeyError, ValueError):
                    result.skipped[SKIP_BAD_VALUES] += 1
                    continue
                if pts68 is None:
                    result.skipped[SKIP_MISSING_POINT] += 1
                    continue
                size = sizes.setdefault(path, image_size(path))
                sample = size if isinstance(size, str) else make_sample(
                    path, four_points_from_68(pts68), box_xyxy, str(path), FORMAT, size, points68_px=pts68)
                if isinstance(sample, str):
                    result.skipped[sample] += 1
                else:
                    result.samples.append(sample)
    return result
