"""A figure performing the 11 DVS128 Gesture classes, rendered for the event simulator.

The figure faces the sensor: a head, a torso and two two-segment arms whose
elbows follow the hands by inverse kinematics. Each class is a trajectory of
the two hands (in body units, so subject size scales it), with random
frequency, amplitude and phase, faded in and out of a rest pose so segment
boundaries do not flash. "Right" is the subject's right, which appears on the
image's left; "clockwise" is as seen by the sensor. Shapes are drawn 2x
oversampled and area-averaged, so edges move smoothly between pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from spikelens.datasets.collections.dvs_gesture import CLASSES

SIZE = 128
OVERSAMPLE = 2
UPPER, FORE = 20.0, 19.0  # arm segment lengths in body units (about pixels at scale 1)
REACH = UPPER + FORE

Vec = np.ndarray  # (2,) image coordinates relative to a shoulder, y down


@dataclass(frozen=True)
class Subject:
    """Who performs and under what light: drawn once per recording."""

    cx: float
    cy: float
    scale: float
    background: float
    figure: float
    #: sleeves and hands, distinct from the torso so hands in front of the body still fire
    arm: float
    sway_px: float

    @staticmethod
    def draw(rng: np.random.Generator) -> Subject:
        bg = float(rng.uniform(0.08, 0.3))
        figure = float(min(0.95, bg * rng.uniform(2.2, 3.5)))
        return Subject(
            cx=float(rng.uniform(56, 72)),
            cy=float(rng.uniform(56, 68)),
            scale=float(rng.uniform(0.8, 1.15)),
            background=bg,
            figure=figure,
            arm=figure * float(rng.uniform(0.5, 0.7)),
            sway_px=float(rng.uniform(0.3, 1.5)),
        )


def _rest(side: int) -> Vec:
    return np.array([side * 6.0, REACH * 0.95])


def _circle(t: float, f: float, radius: float, centre: Vec, clockwise: bool, phase: float) -> Vec:
    a = 2 * np.pi * f * t * (1 if clockwise else -1) + phase  # y is down: growing angle turns clockwise on screen
    return centre + radius * np.array([np.cos(a), np.sin(a)])


def _gesture(label: int, rng: np.random.Generator) -> Callable[[float], tuple[Vec, Vec]]:
    """Hand positions (subject's right, subject's left) relative to each shoulder at time t (s).

    The subject's right shoulder is on the image left (side -1).
    """
    f = float(rng.uniform(0.8, 1.4))
    amp = float(rng.uniform(0.8, 1.15))
    ph = float(rng.uniform(0, 2 * np.pi))
    rest_r, rest_l = _rest(-1), _rest(1)
    name = CLASSES[label]
    if name == "hand_clapping":

        def hands(t: float) -> tuple[Vec, Vec]:
            gap = amp * 9 * (1 + np.cos(2 * np.pi * 1.8 * f * t + ph))
            return np.array([14 - gap, 22.0]), np.array([-14 + gap, 22.0])
    elif name in ("right_hand_wave", "left_hand_wave"):
        side = -1 if name.startswith("right") else 1

        def hands(t: float) -> tuple[Vec, Vec]:
            elbow = np.array([side * UPPER * 0.8, -UPPER * 0.45])
            a = amp * 0.6 * np.sin(2 * np.pi * 2.0 * f * t + ph)
            hand = elbow + FORE * np.array([np.sin(a) + side * 0.15, -np.cos(a)])
            return (hand, rest_l) if side < 0 else (rest_r, hand)
    elif "_arm_" in name and "clockwise" in name:
        side = -1 if name.startswith("right") else 1
        cw = "counter" not in name

        def hands(t: float) -> tuple[Vec, Vec]:
            hand = _circle(t, f, REACH * 0.9 * min(amp, 1.05), np.zeros(2), cw, ph)
            return (hand, rest_l) if side < 0 else (rest_r, hand)
    elif name == "arm_roll":

        def hands(t: float) -> tuple[Vec, Vec]:
            r = _circle(t, 1.8 * f, 7 * amp, np.array([12.0, 18.0]), True, ph)
            left = _circle(t, 1.8 * f, 7 * amp, np.array([-12.0, 18.0]), True, ph + np.pi)
            return r, left
    elif name == "air_drums":

        def hands(t: float) -> tuple[Vec, Vec]:
            s = 2 * np.pi * 2.2 * f * t + ph
            return np.array([4.0, 26 - 9 * amp * abs(np.sin(s))]), np.array([-4.0, 26 - 9 * amp * abs(np.cos(s))])
    elif name == "air_guitar":

        def hands(t: float) -> tuple[Vec, Vec]:
            strum = np.array([12.0, 30 + 6 * amp * np.sin(2 * np.pi * 3.0 * f * t + ph)])
            neck = np.array([REACH * 0.8, 6 + 2 * np.sin(2 * np.pi * 0.5 * f * t)])
            return strum, neck
    else:  # other gestures: smooth random paths of both hands
        k = rng.uniform(0.3, 1.6, (2, 2, 3))
        phases = rng.uniform(0, 2 * np.pi, (2, 2, 3))

        def hands(t: float) -> tuple[Vec, Vec]:
            w = np.sin(2 * np.pi * f * k * t + phases).sum(axis=2) / 3  # (hand, axis) in [-1, 1]
            return np.array([-4 + 14 * w[0, 0], 12 + 16 * w[0, 1]]), np.array([4 + 14 * w[1, 0], 12 + 16 * w[1, 1]])

    return hands


def _elbow(hand: Vec, side: int) -> Vec:
    """Two-link inverse kinematics with the elbow bent outward and down."""
    d = float(np.hypot(*hand))
    d = min(max(d, abs(UPPER - FORE) + 1e-3), REACH - 1e-3)
    base = np.arctan2(hand[1], hand[0])
    bend = np.arccos((UPPER**2 + d**2 - FORE**2) / (2 * UPPER * d))
    a = base + bend * (-side if hand[1] < 0 else side)
    return UPPER * np.array([np.cos(a), np.sin(a)])


def _limit(hand: Vec) -> Vec:
    d = float(np.hypot(*hand))
    return hand if d < REACH else hand * (REACH - 1e-3) / d


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class GestureRenderer:
    """Intensity frames of one recording: ``segments`` of (label, start_us, end_us), rest pose between."""

    def __init__(self, subject: Subject, segments: list[tuple[int, int, int]], rng: np.random.Generator) -> None:
        self.subject = subject
        self.segments = [(lab, t0, t1, _gesture(lab, rng)) for lab, t0, t1 in segments]
        self._fade_us = 250_000

    def hands(self, t_us: int) -> tuple[Vec, Vec]:
        rest = (_rest(-1), _rest(1))
        for _, t0, t1, fn in self.segments:
            if t0 <= t_us < t1:
                w = smoothstep((t_us - t0) / self._fade_us) * smoothstep((t1 - t_us) / self._fade_us)
                g = fn((t_us - t0) * 1e-6)
                return tuple(_limit(r + w * (h - r)) for r, h in zip(rest, g, strict=True))
        return rest

    def __call__(self, t_us: int) -> np.ndarray:
        s, k = self.subject, OVERSAMPLE
        sway = s.sway_px * np.sin(2 * np.pi * 0.3 * t_us * 1e-6)
        img = np.full((SIZE * k, SIZE * k), s.background, np.float32)

        def pt(v: Vec) -> tuple[int, int]:
            return round((s.cx + sway + v[0] * s.scale) * k * 16), round((s.cy + v[1] * s.scale) * k * 16)

        def line(a: Vec, b: Vec, width: float, shade: float) -> None:
            cv2.line(img, pt(a), pt(b), shade, max(1, int(width * s.scale * k)), cv2.LINE_AA, 4)

        def disc(c: Vec, r: float, shade: float) -> None:
            cv2.circle(img, pt(c), int(r * s.scale * k * 16), shade, -1, cv2.LINE_AA, 4)

        disc(np.array([0.0, -40.0]), 9, s.figure)  # head
        line(np.array([0.0, -24.0]), np.array([0.0, 22.0]), 22, s.figure)  # torso
        line(np.array([-6.0, 22.0]), np.array([-8.0, 62.0]), 8, s.figure)  # legs
        line(np.array([6.0, 22.0]), np.array([8.0, 62.0]), 8, s.figure)
        for side, hand in zip((-1, 1), self.hands(t_us), strict=True):
            shoulder = np.array([side * 14.0, -24.0])
            elbow = shoulder + _elbow(hand, side)
            line(shoulder, elbow, 6, s.arm)
            line(elbow, shoulder + hand, 5, s.arm)
            disc(shoulder + hand, 4, s.arm)
        return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
