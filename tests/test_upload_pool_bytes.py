"""The uploads' memory budget (core.upload.pool) counts what a parsed upload's thumbnails take in memory: Pillow
keeps an RGB pixel in 4 bytes and each image has a fixed cost, so counting 3 bytes a pixel let the budget of
768 MiB hold 1.0 to 1.2 GiB."""
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
# In a fresh process: thumbnails decoded as an upload decodes them, held; the growth of resident memory beside
# what parsed_bytes counts for them.
_MEASURE = """
import io, mmap, sys
import numpy as np
from PIL import Image
from core.upload import DEFAULT_LIMITS
from core.upload.images import _decode_image
from core.upload.pool import parsed_bytes

class Parsed:  # what parsed_bytes reads of an UploadedImages
    class data:
        images = []

side, n = int(sys.argv[1]), int(sys.argv[2])
buf = io.BytesIO()
Image.fromarray(np.full((side, side, 3), 90, np.uint8)).save(buf, format="PNG")
raw = buf.getvalue()

def resident():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * mmap.PAGESIZE  # 4 KiB here, 16 or 64 KiB on some ARM kernels

_decode_image(raw, DEFAULT_LIMITS)  # Pillow's first decode sets up its own state
before = resident()
Parsed.data.images = [_decode_image(raw, DEFAULT_LIMITS) for _ in range(n)]
print(resident() - before, parsed_bytes(Parsed))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory read from /proc (Linux)")
@pytest.mark.parametrize(("side", "n"), [(256, 200), (32, 3000)])
def test_parsed_bytes_counts_the_memory_the_thumbnails_take(side, n):
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(side), str(n)], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    grown, counted = int(out[0]), int(out[1])
    assert 0.9 < counted / grown < 1.1, (grown, counted)  # 3 bytes a pixel counted 0.74 (256 px) and 0.63 (32 px)


def test_image_bytes_by_mode():
    from core.upload.pool import IMAGE_OVERHEAD_BYTES, image_bytes

    rows = 8 * 5 + IMAGE_OVERHEAD_BYTES
    assert image_bytes(Image.new("RGB", (4, 5))) == 4 * 5 * 4 + rows
    assert image_bytes(Image.new("RGBA", (4, 5))) == 4 * 5 * 4 + rows
    assert image_bytes(Image.new("L", (4, 5))) == 4 * 5 + rows
    assert image_bytes(Image.new("I;16", (4, 5))) == 4 * 5 * 2 + rows
    assert image_bytes(Image.new("F", (4, 5))) == 4 * 5 * 4 + rows
