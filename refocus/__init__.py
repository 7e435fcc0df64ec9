"""Event refocusing for synthetic aperture imaging: Numba kernels with NumPy twins.

Shift events so the plane at a chosen depth lines up, pack them into
T x 2 x H x W frames for the reconstruction network (or one image for
display), and find the depth by autofocus.
"""

from spikelens.refocus.autofocus import AutofocusResult, autofocus, focal_stack, sharpness
from spikelens.refocus.frames import (
    ESAI_TEST_ROI,
    accumulate,
    check_events,
    focal_stack_images,
    pack_frames,
    pack_frames_esai,
    time_surface,
)
from spikelens.refocus.geometry import RefocusError, SAIGeometry, depth_for_rate, shift_rate

__all__ = [
    "ESAI_TEST_ROI",
    "AutofocusResult",
    "RefocusError",
    "SAIGeometry",
    "accumulate",
    "autofocus",
    "check_events",
    "depth_for_rate",
    "focal_stack",
    "focal_stack_images",
    "pack_frames",
    "pack_frames_esai",
    "sharpness",
    "shift_rate",
    "time_surface",
]
