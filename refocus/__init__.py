"""Event refocusing for synthetic aperture imaging: Numba kernels with NumPy twins.

Shift events so the plane at a chosen depth lines up, pack them into
T x 2 x H x W frames for the reconstruction network (channel 0 = ON) or one
image for display, and find the depth by autofocus. Functions that think in
depths take the recording's :class:`SAIScene` whole.
"""

from spikelens.refocus.autofocus import AutofocusResult, autofocus, focal_stack, sharpness
from spikelens.refocus.frames import (
    ESAI_TEST_ROI,
    CheckedEvents,
    accumulate,
    check_events,
    focal_stack_images,
    pack_frames,
    pack_frames_esai,
    time_surface,
)
from spikelens.refocus.geometry import DEPTH_RANGE, RefocusError, SAIScene, depth_for_rate, shift_rate

__all__ = [
    "DEPTH_RANGE",
    "ESAI_TEST_ROI",
    "AutofocusResult",
    "CheckedEvents",
    "RefocusError",
    "SAIScene",
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
