"""Printing and capture of the fourth fixture family.

- printing: headless Chromium prints the HTML page(s) to PDF (`--print-to-pdf`);
- rasterising: pdftoppm (ImageMagick's PDF coder is disabled by Debian's security policy);
- capture: ImageMagick (`convert`): flatbed scans, office copies, phone photos, faxes, rotation;
- image-only PDFs: img2pdf.

Every random choice comes from the case's seeded `random.Random`, and ImageMagick's own noise
from `-seed`, so a run is reproducible.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CONVERT = "/usr/bin/convert"  # the real ImageMagick (/usr/local/bin/convert may be a stand-in)
PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout


def print_pdf(html_text, work):
    """HTML -> PDF bytes by headless Chromium."""
    src = os.path.join(work, "form.html")
    out = os.path.join(work, "form.pdf")
    with open(src, "w", encoding="utf-8") as fh:
        fh.write(html_text)
    profile = os.path.join(work, "chromium-profile")
    run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={out}",
         "file://" + src], env=dict(os.environ, HOME=work))
    with open(out, "rb") as fh:
        return fh.read()


def rasterise(pdf_path, dpi, work, colour=False, prefix="page"):
    """PDF -> list of PNG paths (pdftoppm), grey unless `colour`."""
    base = os.path.join(work, prefix)
    run([PDFTOPPM, "-r", str(dpi), "-png"] + ([] if colour else ["-gray"]) + [pdf_path, base])
    return sorted(glob.glob(base + "-*.png"))


def im(*args):
    run([CONVERT] + [str(a) for a in args])


# Metadata without dates (reproducible files) that keeps the resolution (pHYs / JFIF density):
# `-strip` would also drop a PNG's pHYs.
NO_DATES = ["-define", "png:exclude-chunk=date,time,text,ztxt,itxt,bkgd", "+set", "comment"]


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def size_of(path):
    out = run(["identify", "-format", "%w %h", path]).decode().split()
    return int(out[0]), int(out[1])


def scan(page, out, rng, *, dpi, skew=0.0, blur=0.0, noise=0.0, quality=80, bitonal=False, rotate=0, seed=1):
    """A flatbed scan: slight rotation, paper tone, blur, Gaussian noise, grey or bitonal."""
    args = [page, "-seed", seed, "-background", "white", "-rotate", f"{skew:.2f}", "+repage"]
    args += ["+level", "6%,97%"]  # paper a little grey, ink not quite black
    if blur:
        args += ["-blur", f"0x{blur}"]
    if noise:
        args += ["-attenuate", noise, "+noise", "Gaussian"]
    if bitonal:
        args += ["-threshold", "58%", "-type", "bilevel"]
    else:
        args += ["-colorspace", "Gray"]
    if rotate:
        args += ["-rotate", rotate, "+repage"]
    args += ["-units", "PixelsPerInch", "-density", dpi] + NO_DATES
    if out.endswith(".jpg"):
        args += ["-quality", quality, "-sampling-factor", "1x1"]
    im(*args, out)
    return out


def copier(page, out, rng, *, dpi, skew=0.0, edge="left", specks=60, rotate=0, seed=1):
    """An office copier: hard contrast, a threshold to 1 bit, dust specks, a dark strip along one
    edge (the lid not closed over the page)."""
    w, h = size_of(page)
    draws = []
    for _ in range(specks):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.choice([1, 1, 1, 2, 2, 3])
        draws += ["-draw", f"circle {x},{y} {x + r},{y}"]
    for _ in range(4):  # a few short hair lines
        x, y = rng.randrange(w), rng.randrange(h)
        draws += ["-draw", f"line {x},{y} {x + rng.randint(-40, 40)},{y + rng.randint(-40, 40)}"]
    sw = int(w * rng.uniform(0.018, 0.03))
    strip = {"left": f"rectangle 0,0 {sw},{h}", "right": f"rectangle {w - sw},0 {w},{h}",
             "top": f"rectangle 0,0 {w},{sw}", "bottom": f"rectangle 0,{h - sw} {w},{h}"}[edge]
    args = [page, "-seed", seed, "-background", "white", "-rotate", f"{skew:.2f}", "+repage",
            "-level", "18%,82%", "-attenuate", "0.6", "+noise", "Gaussian",
            "-fill", "#202020", "-draw", strip, "-fill", "black"] + draws
    args += ["-threshold", "55%", "-type", "bilevel"]
    if rotate:
        args += ["-rotate", rotate, "+repage"]
    args += ["-units", "PixelsPerInch", "-density", dpi] + NO_DATES + [out]
    im(*args)
    return out


def photo(page, out, rng, *, jitter=0.05, shade=0.35, cast="warm", quality=72, long_side=1800, seed=1,
          rotate=0):
    """A phone photo: the sheet on a darker desk, the four corners moved (perspective), a shading
    gradient composited with multiply, a warm or cool colour cast, a little blur and noise, JPEG."""
    w, h = size_of(page)
    mx, my = int(w * 0.09), int(h * 0.07)
    W, H = w + 2 * mx, h + 2 * my
    work = os.path.dirname(out)
    desk = os.path.join(work, "desk.png")
    im("-size", f"{W}x{H}", "gradient:#6b5a48-#2f2822", "-seed", seed, "-attenuate", "0.8", "+noise", "Gaussian",
       desk)
    placed = os.path.join(work, "placed.png")
    im(desk, page, "-geometry", f"+{mx}+{my}", "-composite", placed)
    # the sheet's corners, moved
    src = [(mx, my), (mx + w, my), (mx + w, my + h), (mx, my + h)]
    dst = [(x + rng.uniform(-jitter, jitter) * w, y + rng.uniform(-jitter, jitter) * h) for x, y in src]
    pts = " ".join(f"{a},{b} {c:.1f},{d:.1f}" for (a, b), (c, d) in zip(src, dst))
    # shading: a linear gradient from one side, multiplied in
    light = int(255 * (1 - shade))
    grad = os.path.join(work, "shade.png")
    turn = rng.choice([0, 90, 180, 270])
    im("-size", f"{W}x{H}" if turn in (0, 180) else f"{H}x{W}", f"gradient:white-rgb({light},{light},{light})",
       "-rotate", turn, "-resize", f"{W}x{H}!", grad)
    r, g, b = {"warm": (1.0, 0.93, 0.80), "cool": (0.90, 0.96, 1.0)}[cast]
    args = [placed, "-virtual-pixel", "background", "-background", "#2f2822",
            "-distort", "Perspective", pts, grad, "-compose", "multiply", "-composite",
            "-channel", "R", "-evaluate", "multiply", r, "-channel", "G", "-evaluate", "multiply", g,
            "-channel", "B", "-evaluate", "multiply", b, "+channel",
            "-blur", "0x0.7", "-seed", seed, "-attenuate", "0.35", "+noise", "Gaussian",
            "-resize", f"{long_side}x{long_side}>"]
    if rotate:
        args += ["-rotate", rotate, "+repage"]
    args += ["-units", "PixelsPerInch", "-density", "72"] + NO_DATES + ["-quality", quality, out]
    im(*args)
    return out


def fax(page, out, rng, *, xdpi=204, ydpi=196, dither=False, header="", skew=0.0, seed=1, src_dpi=200):
    """A fax: resampled to 204×196 or 204×98 dpi, one bit (threshold or dither), a header line."""
    sx, sy = 100.0 * xdpi / src_dpi, 100.0 * ydpi / src_dpi
    args = [page, "-background", "white", "-rotate", f"{skew:.2f}", "+repage",
            "-resize", f"{sx:.2f}%x{sy:.2f}%!"]
    if header:
        args += ["-gravity", "NorthWest", "-font", "Nimbus-Mono-PS", "-pointsize", "9", "-density",
                 f"{xdpi}x{ydpi}", "-fill", "black", "-annotate", "+30+6", header, "-gravity", "None"]
    args += ["-seed", seed, "-attenuate", "0.3", "+noise", "Gaussian"]
    args += ["-monochrome"] if dither else ["-threshold", "60%", "-type", "bilevel"]
    args += ["-units", "PixelsPerInch", "-density", f"{xdpi}x{ydpi}"] + NO_DATES
    if out.endswith(".tif"):
        args += ["-compress", "Group4"]
    im(*args, out)
    return out


def tiff_pages(pages, out, xdpi, ydpi):
    """Several one-bit pages as one multi-page CCITT G4 TIFF."""
    im(*pages, "-units", "PixelsPerInch", "-density", f"{xdpi}x{ydpi}", *NO_DATES, "-compress", "Group4", out)
    return out


def to_pdf(images, dpi):
    """An image-only PDF of already-encoded JPEG/PNG images, one a page (img2pdf) at `dpi`, with
    a reproducible /ID."""
    import img2pdf

    pdf = img2pdf.convert(images, nodate=True, layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi)))
    digest = hashlib.md5(b"".join(images)).hexdigest().encode()

    def same(m):
        n1, n2 = len(m.group(1)), len(m.group(2))
        return m.group(0).replace(m.group(1), digest[:n1].ljust(n1, b"0")).replace(
            m.group(2), digest[:n2].ljust(n2, b"0"))

    return re.sub(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*\]", same, pdf)


def workdir():
    return tempfile.mkdtemp(prefix="family4-")
