"""Drawing back ends for the third fixture family (issue 19, item 7).

Forms are described once, in points (1/72 in) from the top-left corner of an A4 page, and drawn
either by Pillow onto a raster page (for scans, photos and faxes) or by reportlab into a PDF
with a text layer (digital forms). Neither back end shares code with the project's own Rust
form writer or with fixtures/independent/generate.py.
"""

import io
import math

from PIL import Image, ImageDraw, ImageFont

A4_W, A4_H = 595.28, 841.89

FONT_DIR_DJ = "/usr/share/fonts/truetype/dejavu/"
FONT_DIR_LI = "/usr/share/fonts/truetype/liberation2/"

# name -> (regular, bold) TrueType files
FONTS = {
    "dejavu-sans": (FONT_DIR_DJ + "DejaVuSans.ttf", FONT_DIR_DJ + "DejaVuSans-Bold.ttf"),
    "dejavu-serif": (FONT_DIR_DJ + "DejaVuSerif.ttf", FONT_DIR_DJ + "DejaVuSerif-Bold.ttf"),
    "dejavu-mono": (FONT_DIR_DJ + "DejaVuSansMono.ttf", FONT_DIR_DJ + "DejaVuSansMono-Bold.ttf"),
    "liberation-sans": (FONT_DIR_LI + "LiberationSans-Regular.ttf", FONT_DIR_LI + "LiberationSans-Bold.ttf"),
    "liberation-serif": (FONT_DIR_LI + "LiberationSerif-Regular.ttf", FONT_DIR_LI + "LiberationSerif-Bold.ttf"),
}
# The glyph font for ballot boxes and ticks (Liberation has none of them).
GLYPH_FONT = FONT_DIR_DJ + "DejaVuSans.ttf"


def font_file(family, bold=False):
    if family == "glyph":
        return GLYPH_FONT
    reg, b = FONTS[family]
    return b if bold else reg


_measure_cache = {}


def text_width(s, family, size, bold=False):
    path = font_file(family, bold)
    f = _measure_cache.get(path)
    if f is None:
        f = ImageFont.truetype(path, 200)
        _measure_cache[path] = f
    return f.getlength(s) * size / 200.0


def bezier_points(p0, p1, p2, p3, n=24):
    pts = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        x = u * u * u * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t * t * t * p3[0]
        y = u * u * u * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t * t * t * p3[1]
        pts.append((x, y))
    return pts


class PilPage:
    """A raster page: RGB, white, `dpi` pixels per inch."""

    acro = False

    def __init__(self, dpi):
        self.dpi = dpi
        self.s = dpi / 72.0
        self.img = Image.new("RGB", (round(A4_W * self.s), round(A4_H * self.s)), (255, 255, 255))
        self.d = ImageDraw.Draw(self.img)
        self._fonts = {}

    def _font(self, family, size, bold):
        key = (family, size, bold)
        f = self._fonts.get(key)
        if f is None:
            f = ImageFont.truetype(font_file(family, bold), max(4, round(size * self.s)))
            self._fonts[key] = f
        return f

    def text(self, x, y, s, family, size, bold=False, colour=(0, 0, 0)):
        """`y` is the baseline."""
        self.d.text((x * self.s, y * self.s), s, font=self._font(family, size, bold), fill=colour, anchor="ls")

    def line(self, pts, width=0.8, colour=(0, 0, 0)):
        w = max(1, round(width * self.s))
        self.d.line([(x * self.s, y * self.s) for x, y in pts], fill=colour, width=w, joint="curve")

    def rect(self, x, y, w, h, width=0.8, fill=None, stroke=True, colour=(0, 0, 0)):
        box = [x * self.s, y * self.s, (x + w) * self.s, (y + h) * self.s]
        if fill is not None:
            self.d.rectangle(box, fill=fill)
        if stroke:
            self.d.rectangle(box, outline=colour, width=max(1, round(width * self.s)))

    def curves(self, segments, width=1.2, colour=(20, 30, 120)):
        """`segments`: list of strokes, each a list of cubic segments (p0, p1, p2, p3)."""
        for stroke in segments:
            pts = []
            for seg in stroke:
                pts.extend(bezier_points(*seg))
            self.line(pts, width=width, colour=colour)

    def image(self, x, y, w, h, pil_img):
        im = pil_img.convert("RGB").resize((round(w * self.s), round(h * self.s)), Image.LANCZOS)
        self.img.paste(im, (round(x * self.s), round(y * self.s)))


class PdfDoc:
    """A reportlab PDF with a text layer; the same calls as PilPage, several pages."""

    def __init__(self):
        from reportlab.pdfgen import canvas
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        self.buf = io.BytesIO()
        self.c = canvas.Canvas(self.buf, pagesize=(A4_W, A4_H), invariant=1, pageCompression=1)
        self.c.setTitle("Blankett")
        self.c.setAuthor("family3")
        self.c.setCreator("family3 generator")
        self._registered = set()
        self._pdfmetrics = pdfmetrics
        self._TTFont = TTFont

    def _fontname(self, family, bold):
        path = font_file(family, bold)
        name = path.rsplit("/", 1)[1].replace(".ttf", "")
        if name not in self._registered:
            self._pdfmetrics.registerFont(self._TTFont(name, path))
            self._registered.add(name)
        return name

    def text(self, x, y, s, family, size, bold=False, colour=(0, 0, 0)):
        self.c.setFillColorRGB(*[v / 255 for v in colour])
        self.c.setFont(self._fontname(family, bold), size)
        self.c.drawString(x, A4_H - y, s)

    def line(self, pts, width=0.8, colour=(0, 0, 0)):
        self.c.setStrokeColorRGB(*[v / 255 for v in colour])
        self.c.setLineWidth(width)
        p = self.c.beginPath()
        p.moveTo(pts[0][0], A4_H - pts[0][1])
        for x, y in pts[1:]:
            p.lineTo(x, A4_H - y)
        self.c.drawPath(p, stroke=1, fill=0)

    def rect(self, x, y, w, h, width=0.8, fill=None, stroke=True, colour=(0, 0, 0)):
        self.c.setLineWidth(width)
        self.c.setStrokeColorRGB(*[v / 255 for v in colour])
        if fill is not None:
            f = fill if isinstance(fill, tuple) else (fill, fill, fill)
            self.c.setFillColorRGB(*[v / 255 for v in f])
        self.c.rect(x, A4_H - y - h, w, h, stroke=1 if stroke else 0, fill=1 if fill is not None else 0)
        self.c.setFillColorRGB(0, 0, 0)

    def curves(self, segments, width=1.2, colour=(20, 30, 120)):
        """The signature as vector paths (cubic Béziers)."""
        self.c.setStrokeColorRGB(*[v / 255 for v in colour])
        self.c.setLineWidth(width)
        self.c.setLineCap(1)
        self.c.setLineJoin(1)
        for stroke in segments:
            p = self.c.beginPath()
            p0 = stroke[0][0]
            p.moveTo(p0[0], A4_H - p0[1])
            for _, c1, c2, p3 in stroke:
                p.curveTo(c1[0], A4_H - c1[1], c2[0], A4_H - c2[1], p3[0], A4_H - p3[1])
            self.c.drawPath(p, stroke=1, fill=0)

    def image(self, x, y, w, h, pil_img):
        from reportlab.lib.utils import ImageReader

        self.c.drawImage(ImageReader(pil_img.convert("RGB")), x, A4_H - y - h, w, h)

    def next_page(self):
        self.c.showPage()

    # AcroForm (a filled fillable form): values as text fields, choices as radio groups.
    acro = False

    def textfield(self, name, x, y_top, w, h, value):
        self.c.acroForm.textfield(name=name, value=value, x=x, y=A4_H - y_top - h, width=w, height=h,
                                  fontName="Helvetica", fontSize=10, borderWidth=0.5, forceBorder=True,
                                  maxlen=200)

    def radio(self, name, export, selected, x, y_top, size):
        self.c.acroForm.radio(name=name, value=export, selected=selected, x=x, y=A4_H - y_top - size,
                              size=size, buttonStyle="cross", shape="square", borderWidth=0.7,
                              forceBorder=True)

    def bytes(self):
        self.c.showPage()
        self.c.save()
        return self.buf.getvalue()


def signature_strokes(rng, x, y, w, h):
    """A handwriting-like scribble inside the box (x, y, w, h): two or three strokes of cubic
    Bézier segments, moving right with loops, and a flourish under it."""
    strokes = []
    cx = x + w * rng.uniform(0.08, 0.18)
    base = y + h * rng.uniform(0.55, 0.7)
    amp = h * 0.28
    for _ in range(rng.randint(2, 3)):
        segs = []
        p0 = (cx, base + rng.uniform(-amp, amp) * 0.3)
        for _ in range(rng.randint(3, 5)):
            step = w * rng.uniform(0.05, 0.11)
            p3 = (p0[0] + step, base + rng.uniform(-amp, amp) * 0.6)
            c1 = (p0[0] + step * rng.uniform(-0.6, 0.6), p0[1] - amp * rng.uniform(0.6, 1.3))
            c2 = (p3[0] - step * rng.uniform(-0.6, 0.6), p3[1] + amp * rng.uniform(0.3, 1.0))
            segs.append((p0, c1, c2, p3))
            p0 = p3
        strokes.append(segs)
        cx = p0[0] + w * rng.uniform(0.02, 0.05)
        if cx > x + w * 0.8:
            break
    # flourish
    fx0 = x + w * rng.uniform(0.1, 0.2)
    fx1 = min(cx, x + w * 0.9)
    fy = y + h * 0.82
    strokes.append([((fx0, fy), (fx0 + (fx1 - fx0) * 0.3, fy + h * 0.08),
                     (fx0 + (fx1 - fx0) * 0.7, fy - h * 0.1), (fx1, fy - h * 0.02))])
    return strokes


def signature_image(rng, w_pt, h_pt):
    """The scribble as a small raster image (a pasted signature), 200 dpi."""
    page = PilPage(200)
    # draw in a private canvas of the box size
    s = page.s
    img = Image.new("RGB", (round(w_pt * s), round(h_pt * s)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for stroke in signature_strokes(rng, 0, 0, w_pt, h_pt):
        pts = []
        for seg in stroke:
            pts.extend(bezier_points(*seg))
        d.line([(px * s, py * s) for px, py in pts], fill=(25, 25, 90), width=max(1, round(1.3 * s)), joint="curve")
    return img


def rot_point(cx, cy, ang, px, py):
    c, s_ = math.cos(ang), math.sin(ang)
    return (cx + (px - cx) * c - (py - cy) * s_, cy + (px - cx) * s_ + (py - cy) * c)
