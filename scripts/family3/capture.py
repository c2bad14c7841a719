"""Captures: what a scanner, a phone or a fax machine makes of a drawn page (Pillow + numpy).

Every function takes RGB pages drawn by draw.PilPage and returns (bytes, mime type, filename
extension). Randomness comes from the `rng` passed in (seeded per case), so output is
reproducible.
"""

import io

import numpy as np
from PIL import Image, ImageFilter


def _np_rng(rng):
    return np.random.default_rng(rng.randrange(1 << 30))


def degrade(img, rng, skew=0.0, noise=0.0, blur=0.0, paper=250, grey=True):
    """Scanner: skew (degrees), paper tone, gaussian noise (sigma in grey levels), blur."""
    im = img.convert("L") if grey else img.copy()
    if skew:
        im = im.rotate(skew, resample=Image.BICUBIC, expand=False, fillcolor=255 if grey else (255, 255, 255))
    a = np.asarray(im).astype(np.float32)
    # paper tone: white becomes `paper`, black stays near black
    a = a * (paper / 255.0)
    if noise:
        a += _np_rng(rng).normal(0, noise, a.shape).astype(np.float32)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    return im


def encode(im, fmt, dpi, quality=85):
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=quality, dpi=(dpi, dpi), optimize=True)
        return buf.getvalue(), "image/jpeg", "jpg"
    if fmt == "png":
        im.save(buf, "PNG", dpi=(dpi, dpi), optimize=True)
        return buf.getvalue(), "image/png", "png"
    raise ValueError(fmt)


def to_pdf(images):
    """An image-only PDF of already-encoded JPEG/PNG/TIFF images, one a page (img2pdf)."""
    import img2pdf

    import hashlib
    import re

    pdf = img2pdf.convert(images, nodate=True)
    # img2pdf writes a random file /ID: replace it, in place (same length, so the xref offsets
    # stay right), by a digest of the images, for reproducible output.
    digest = hashlib.md5(b"".join(images)).hexdigest().encode()

    def same(m):
        n1, n2 = len(m.group(1)), len(m.group(2))
        return m.group(0).replace(m.group(1), digest[:n1].ljust(n1, b"0")).replace(
            m.group(2), digest[:n2].ljust(n2, b"0"))

    return re.sub(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", same, pdf)


def _persp_coeffs(dst, src):
    """Coefficients for PIL's PERSPECTIVE transform mapping output points `dst` to input `src`."""
    m = []
    for (x, y), (X, Y) in zip(dst, src):
        m.append([x, y, 1, 0, 0, 0, -X * x, -X * y])
        m.append([0, 0, 0, x, y, 1, -Y * x, -Y * y])
    a = np.array(m, dtype=np.float64)
    b = np.array([c for p in src for c in p], dtype=np.float64)
    return np.linalg.solve(a, b).tolist()


def phone_photo(page, rng, corners_jitter=0.05, shade=0.35, cast=(1.0, 0.95, 0.84), out_long=2100,
                quality=72, blur=0.7):
    """The sheet lying on a darker desk, seen from a phone: the four corners moved (perspective),
    a shading gradient across the sheet, a warm colour cast, slight blur, JPEG."""
    pw, ph = page.size
    W = int(pw * 1.22)
    H = int(ph * 1.16)
    nr = _np_rng(rng)
    # desk: dark brown-grey with a gradient and grain
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.array([92, 74, 60], dtype=np.float32)
    grad = 0.8 + 0.35 * (xx / W)
    desk = base[None, None, :] * grad[..., None] + nr.normal(0, 6, (H, W, 1)).astype(np.float32)
    desk_img = Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8), "RGB")
    mx, my = (W - pw) / 2, (H - ph) / 2
    j = corners_jitter
    dst = [
        (mx + rng.uniform(-j, j) * pw, my + rng.uniform(-j, j) * ph),
        (mx + pw + rng.uniform(-j, j) * pw, my + rng.uniform(-j, j) * ph),
        (mx + pw + rng.uniform(-j, j) * pw, my + ph + rng.uniform(-j, j) * ph),
        (mx + rng.uniform(-j, j) * pw, my + ph + rng.uniform(-j, j) * ph),
    ]
    src = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
    coeffs = _persp_coeffs(dst, src)
    warped = page.convert("RGB").transform((W, H), Image.PERSPECTIVE, coeffs, Image.BICUBIC,
                                            fillcolor=(0, 0, 0))
    mask = Image.new("L", page.size, 255).transform((W, H), Image.PERSPECTIVE, coeffs, Image.BILINEAR,
                                                     fillcolor=0)
    desk_img.paste(warped, (0, 0), mask)
    a = np.asarray(desk_img).astype(np.float32)
    # shading: light from one corner, falling off across the sheet
    ang = rng.uniform(0, 2 * np.pi)
    field = (np.cos(ang) * (xx / W - 0.5) + np.sin(ang) * (yy / H - 0.5))
    light = 1.0 - shade * (field - field.min()) / (field.max() - field.min())
    a *= light[..., None]
    a *= np.array(cast, dtype=np.float32)[None, None, :]
    a += nr.normal(0, 3.0, a.shape).astype(np.float32)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    scale = out_long / max(W, H)
    im = im.resize((round(W * scale), round(H * scale)), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue(), "image/jpeg", "jpg"


def fax(page, dpi_drawn, xdpi=204, ydpi=196, dither=True, skew=0.0):
    """A fax page: resampled to the fax grid (204×196 fine, 204×98 standard), 1 bit."""
    g = page.convert("L")
    if skew:
        g = g.rotate(skew, resample=Image.BICUBIC, expand=False, fillcolor=255)
    w, h = g.size
    g = g.resize((round(w * xdpi / dpi_drawn), round(h * ydpi / dpi_drawn)), Image.LANCZOS)
    if dither:
        return g.convert("1")  # Floyd-Steinberg
    return g.point(lambda v: 255 if v > 150 else 0).convert("1", dither=Image.NONE)


def encode_fax(pages, xdpi, ydpi, fmt):
    buf = io.BytesIO()
    if fmt == "png":
        assert len(pages) == 1
        pages[0].save(buf, "PNG", dpi=(xdpi, ydpi), optimize=True)
        return buf.getvalue(), "image/png", "png"
    if fmt == "g4":
        pages[0].save(buf, "TIFF", compression="group4", dpi=(xdpi, ydpi), save_all=len(pages) > 1,
                      append_images=pages[1:])
        return buf.getvalue(), "image/tiff", "tif"
    raise ValueError(fmt)
