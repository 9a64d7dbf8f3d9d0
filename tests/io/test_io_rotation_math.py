"""Rotation maths: FFmpeg display matrices -> clockwise degrees, and turning frames upright."""
from __future__ import annotations

import numpy as np
import pytest

from vidlstm.io.backend_base import normalize_rotation, rotation_from_display_matrix, stored_size, turn_upright


# Display matrices as FFmpeg stores them (9 int32, 16.16 fixed point, w column 2.30), read back from
# files PyAV wrote with set_display_rotation(-clockwise); decord's video_90.mov carries the first one
# (plus a translation, which does not matter).
ONE = 1 << 16
DISPLAY_MATRICES = {
    0: [ONE, 0, 0, 0, ONE, 0, 0, 0, 1 << 30],
    90: [0, ONE, 0, -ONE, 0, 0, 0, 0, 1 << 30],
    180: [-ONE, 0, 0, 0, -ONE, 0, 0, 0, 1 << 30],
    270: [0, -ONE, 0, ONE, 0, 0, 0, 0, 1 << 30],
}


@pytest.mark.parametrize("clockwise", [0, 90, 180, 270])
def test_display_matrix_gives_the_clockwise_turn(clockwise):
    assert rotation_from_display_matrix(np.array(DISPLAY_MATRICES[clockwise], dtype="<i4")) == clockwise


def test_display_matrix_with_translation_and_rounding():
    video_90_mov = [0, 65536, 0, -65536, 0, 0, 20971520, 0, 1073741824]
    assert rotation_from_display_matrix(video_90_mov) == 90
    slightly_off = [3, ONE - 2, 0, -ONE + 1, 2, 0, 0, 0, 1 << 30]
    assert rotation_from_display_matrix(slightly_off) == 90


def test_degenerate_matrix_means_no_rotation():
    assert rotation_from_display_matrix(np.zeros(9, dtype="<i4")) == 0


@pytest.mark.parametrize("degrees, snapped", [(89.99, 90), (-90, 270), (450, 90), (-0.4, 0), (float("nan"), 0), (None, 0)])
def test_normalize_rotation_snaps_to_quarter_turns(degrees, snapped):
    assert normalize_rotation(degrees) == snapped


def test_turn_upright_turns_clockwise():
    stored = np.arange(6, dtype=np.uint8).reshape(2, 3, 1).repeat(3, -1)  # rows [0 1 2], [3 4 5]
    assert turn_upright(stored, 90)[..., 0].tolist() == [[3, 0], [4, 1], [5, 2]]  # top-left goes top-right
    assert turn_upright(stored, 180)[..., 0].tolist() == [[5, 4, 3], [2, 1, 0]]
    assert turn_upright(stored, 270)[..., 0].tolist() == [[2, 5], [1, 4], [0, 3]]
    assert turn_upright(stored, 0) is stored


def test_stored_size_swaps_for_quarter_turns():
    assert stored_size((112, 64), 90) == (64, 112) and stored_size((112, 64), 270) == (64, 112)
    assert stored_size((112, 64), 180) == (112, 64) and stored_size(None, 90) is None


def test_pyav_reads_the_display_matrix_where_frames_have_no_rotation_attribute():
    """PyAV before 13 has no ``frame.rotation``: the side data is parsed instead."""
    pyav_backend = pytest.importorskip("vidlstm.io.pyav_backend")

    class SideData(bytes):
        type = "Type.DISPLAYMATRIX"

    class OldFrame:
        side_data = [SideData(np.array(DISPLAY_MATRICES[90], dtype="<i4").tobytes())]

    assert pyav_backend.frame_rotation(OldFrame()) == 90
