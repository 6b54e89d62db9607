#!/usr/bin/env python3
"""Score `facetrack images --json` rows against a field-case folder's truth.json and its `expect`.

Per file: faces found, NME (% of the true inter-ocular distance; faces matched to the nearest truth face by
their eye midpoints), eye order, the worst in-frame point error for cut-off faces, and PASS/FAIL against
what the truth says a correct tool does (../shared/field-cases/README.md).

usage: facetrack images ../shared/field-cases/rolled --json rolled.jsonl
       scripts/score_field_cases.py ../shared/field-cases/rolled rolled.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facetrack.fieldcases import score_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path, help="a field-case folder with truth.json")
    parser.add_argument("rows", type=Path, help="facetrack images --json output for that folder")
    args = parser.parse_args()
    lines = [line for line in args.rows.read_text().splitlines() if line.strip()]
    results = score_case(args.case, [json.loads(line) for line in lines])
    for r in results:
        print(f"{r['file']:<20} faces {r['faces']}  NME {r['nme']}  eyes in order {r['eyes_in_order']}  "
              f"worst in-frame point {r['in_frame_error_iod']}  size {r['size']}  {'PASS' if r['pass'] else 'FAIL'}")
    print(f"{sum(r['pass'] for r in results)}/{len(results)} pass")


if __name__ == "__main__":
    main()
