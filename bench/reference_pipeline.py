"""The reference's visual-observation pipeline, rebuilt for side-by-side timing.

Per step: cv2.imread the panorama, cut four 640x640 FOV-90 views with a pinhole ray map and
cv2.remap (bicubic, wrap), convert BGR->RGB into PIL, resize each with PIL's default bicubic,
paste into a black (2r+5)^2 canvas and convert to a numpy array. Reads JSON from stdin:
{"resolution": r, "steps": [{"jpg": path, "rotation": deg, "heading": deg}, ...]}; prints
{"ms_per_step": [...]} on stdout.
"""
import json
import sys
import time

import cv2
import numpy as np
from PIL import Image


def view(pano, fov, heading, size, rotation):
    heading = ((heading - 180) % 360 + rotation) % 360
    h, w = pano.shape[:2]
    focal = 0.5 * size / np.tan(np.radians(fov) / 2)
    centre = (size - 1) / 2.0
    intrinsics = np.array([[focal, 0, centre], [0, focal, centre], [0, 0, 1]], np.float32)
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    rays = np.stack([cols, rows, np.ones_like(cols)], axis=-1) @ np.linalg.inv(intrinsics).T
    turn, _ = cv2.Rodrigues(np.array([0.0, 1.0, 0.0], np.float32) * np.radians(heading))
    tilt, _ = cv2.Rodrigues(turn @ np.array([1.0, 0.0, 0.0], np.float32) * 0.0)
    rays = rays @ (tilt @ turn).T
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    lon = np.arctan2(unit[..., 0:1], unit[..., 2:])
    lat = np.arcsin(unit[..., 1:2])
    map_x = ((lon / (2 * np.pi) + 0.5) * (w - 1)).astype(np.float32)
    map_y = ((lat / np.pi + 0.5) * (h - 1)).astype(np.float32)
    out = cv2.remap(pano, map_x[..., 0], map_y[..., 0], cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)
    return Image.fromarray(cv2.cvtColor(out, cv2.COLOR_BGR2RGB))


def grid(step, resolution):
    pano = cv2.imread(step["jpg"], cv2.IMREAD_COLOR)
    canvas = Image.new("RGB", (2 * resolution + 5, 2 * resolution + 5), (0, 0, 0))
    for i, offset in enumerate((-135, -45, 45, 135)):
        tile = view(pano, 90, (step["heading"] + offset) % 360, 640, step["rotation"]).resize((resolution, resolution))
        canvas.paste(tile, ((i % 2) * (resolution + 5), (i // 2) * (resolution + 5)))
    return np.array(canvas)


def main():
    request = json.load(sys.stdin)
    times = []
    for step in request["steps"]:
        start = time.perf_counter()
        grid(step, request["resolution"])
        times.append((time.perf_counter() - start) * 1000)
    json.dump({"ms_per_step": times}, sys.stdout)


if __name__ == "__main__":
    main()
