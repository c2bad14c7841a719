"""The three HTML designs of the fourth fixture family (rendered by headless Chromium).

A form is a dict (see values.order_form / values.dereg_form) plus its style:
  design    "grid"   — a CSS grid of bordered boxes, the label small at the top of each box and
                       the value below it; numbered headings (`1. Vårdgivare och vårdenhet`)
            "table"  — a two-column <table>, label cells shaded, labels without colon;
                       upper-case section rows (`KORTINNEHAVARE`)
            "letter" — letter-like: `Label:` in bold, the value on a dotted leader line to its
                       right; lettered headings (`A. Kortinnehavare`); values typed or in a
                       handwriting-like script font (Z003) in blue ink
  order     "std" | "alt" (sections and labels in another order)
  font      a key of FONTS: the labels' font; `vfont` the values' font
  mark      tickbox (✓ in a CSS box) | xbox (✗ U+2717 in a CSS box) | ballot (☒ / ☐ characters) |
            filled (a CSS box with a black background) | svgx (a hand-drawn X: two SVG strokes
            overshooting the box) | circle (no boxes: an SVG ellipse drawn around the chosen
            option word) | paren (`(X)` / `( )` typed in Nimbus Mono PS)
  signature "scribble" (an SVG path in blue ink) | "typed" (the manager's name typed in the box)
            | "none" (empty box)
"""

import html
import random

FONTS = {
    "nimbus-sans": "'Nimbus Sans'",
    "nimbus-roman": "'Nimbus Roman'",
    "nimbus-mono": "'Nimbus Mono PS'",
    "c059": "'C059'",
    "p052": "'P052'",
    "urw-bookman": "'URW Bookman'",
    "urw-gothic": "'URW Gothic'",
    "z003": "'Z003'",
    "lato": "'Lato'",
}

ORDER_LABELS = {
    "vardgivare_namn": "Vårdgivare",
    "vardgivare_orgnr": "Organisationsnummer",
    "vardenhet_namn": "Vårdenhet",
    "vardenhet_hsaid": "Vårdenhetens HSA-id",
    "fornamn": "Förnamn",
    "efternamn": "Efternamn",
    "personnummer": "Personnummer",
    "epost": "E-postadress",
    "mobil": "Mobiltelefon",
    "befattning": "Befattning",
    "utlamningsstalle": "Utlämningsställe (namn)",
    "vc_namn": "Verksamhetschef",
    "vc_epost": "Verksamhetschefens e-post",
    "vc_telefon": "Telefon",
    "datum": "Datum",
    "bestallningstyp": "Beställningen avser",
    "utlamning": "Utlämning",
    "underskrift": "Underskrift",
}
DEREG_LABELS = {
    "namn": "Kortinnehavarens namn",
    "personnummer": "Personnummer",
    "kortnummer": "Kortnummer",
    "vardenhet_namn": "Vårdenhet",
    "vardenhet_hsaid": "Vårdenhetens HSA-id",
    "klippt_kort": "Klippt kort mottaget",
    "vc_namn": "Verksamhetschef",
    "datum": "Datum",
    "underskrift": "Underskrift",
}
OPTIONS = {
    "bestallningstyp": [("Nytt", "Nytt kort"), ("Ersattning", "Ersättningskort"), ("Fornyelse", "Förnyelse")],
    "utlamning": [("Utlamningsstalle", "Utlämningsställe"), ("Utkorning", "Utkörning")],
    "klippt_kort": [("Ja", "Ja"), ("Nej", "Nej")],
}
CHOICES = set(OPTIONS)

# (section key, fields); the heading text depends on the design
SECTIONS = {
    ("order", "std"): [
        ("unit", ["vardgivare_namn", "vardgivare_orgnr", "vardenhet_namn", "vardenhet_hsaid"]),
        ("holder", ["fornamn", "efternamn", "personnummer", "epost", "mobil", "befattning"]),
        ("card", ["bestallningstyp", "utlamning", "utlamningsstalle"]),
        ("sign", ["vc_namn", "vc_epost", "vc_telefon", "datum", "underskrift"]),
    ],
    ("order", "alt"): [
        ("holder", ["efternamn", "fornamn", "personnummer", "befattning", "epost", "mobil"]),
        ("unit", ["vardenhet_namn", "vardenhet_hsaid", "vardgivare_namn", "vardgivare_orgnr"]),
        ("card", ["utlamning", "utlamningsstalle", "bestallningstyp"]),
        ("sign", ["datum", "vc_namn", "vc_telefon", "vc_epost", "underskrift"]),
    ],
    ("deregistration", "std"): [
        ("holder", ["namn", "personnummer", "kortnummer"]),
        ("unitonly", ["vardenhet_namn", "vardenhet_hsaid"]),
        ("confirm", ["klippt_kort", "vc_namn", "datum", "underskrift"]),
    ],
    ("deregistration", "alt"): [
        ("cardonly", ["kortnummer", "personnummer", "namn"]),
        ("confirm", ["vardenhet_namn", "vardenhet_hsaid", "klippt_kort", "datum", "vc_namn", "underskrift"]),
    ],
}
HEADINGS = {
    "unit": "Vårdgivare och vårdenhet",
    "holder": "Kortinnehavare",
    "card": "Kortet och utlämning",
    "sign": "Intygande av verksamhetschef",
    "unitonly": "Enhet",
    "confirm": "Bekräftelse",
    "cardonly": "Kortet som avregistreras",
}

TITLES = {
    "order": ("Beställning av eTjänstekort", "TJID-101"),
    "deregistration": ("Avregistrering av eTjänstekort", "TJID-102"),
}
INSTRUCTIONS = {
    "order": [
        "Samtliga fält ska fyllas i. Kortinnehavaren ska vara registrerad i KIV vid den enhet som anges nedan.",
        "Blanketten undertecknas av enhetens verksamhetschef och skickas inskannad till TjänsteID-service.",
    ],
    "deregistration": [
        "Kortet ska klippas genom chipet och lämnas till verksamhetschefen innan blanketten skickas.",
        "Avregistreringen görs innan anställningen tas bort i KIV.",
    ],
}

E = html.escape


def page_css(font, vfont, extra=""):
    return f"""
@page {{ size: A4; margin: 0; }}
html, body {{ margin: 0; padding: 0; }}
body {{ font-family: {FONTS[font]}, 'DejaVu Sans', sans-serif; color: #111; }}
.page {{ width: 210mm; height: 296mm; box-sizing: border-box; padding: 13mm 17mm 10mm 17mm; position: relative;
         page-break-after: always; overflow: hidden; }}
.page:last-child {{ page-break-after: auto; }}
.top {{ display: flex; align-items: center; justify-content: space-between; margin-bottom: 5mm; }}
.logo {{ display: flex; align-items: center; gap: 3mm; font-weight: bold; font-size: 10pt; color: #0b4f8a; }}
.logo .mark {{ width: 9mm; height: 9mm; border-radius: 50%; border: 2.2pt solid #0b4f8a; position: relative; }}
.logo .mark::after {{ content: ""; position: absolute; left: 2.2mm; top: 2.2mm; width: 3.4mm; height: 3.4mm;
                      background: #0b4f8a; border-radius: 1mm; }}
.logo small {{ display: block; font-weight: normal; font-size: 7.5pt; color: #555; }}
.fid {{ font-size: 9pt; border: 0.8pt solid #333; padding: 1mm 2.5mm; }}
h1 {{ font-size: 18pt; margin: 0 0 2mm 0; }}
.instr {{ font-size: 8pt; margin: 0 0 4mm 0; line-height: 1.35; color: #333; }}
.val {{ font-family: {FONTS[vfont]}, 'DejaVu Sans', sans-serif; }}
.footer {{ position: absolute; left: 17mm; right: 17mm; bottom: 8mm; font-size: 7.5pt; color: #444;
           display: flex; justify-content: space-between; border-top: 0.5pt solid #888; padding-top: 1.5mm; }}
.opt {{ display: inline-block; margin-right: 7mm; white-space: nowrap; position: relative; }}
.box {{ display: inline-block; width: 3.8mm; height: 3.8mm; border: 0.9pt solid #111; vertical-align: -0.6mm;
        margin-right: 1.8mm; position: relative; text-align: center; line-height: 3.8mm; font-size: 10pt;
        font-family: 'DejaVu Sans', sans-serif; }}
.box.filled {{ background: #111; }}
.box svg, .opt svg.ring {{ position: absolute; overflow: visible; }}
.glyph {{ font-family: 'DejaVu Sans', sans-serif; font-size: 12.5pt; margin-right: 1.5mm; }}
.paren {{ font-family: 'Nimbus Mono PS', monospace; margin-right: 1.5mm; font-weight: bold; }}
.sig {{ position: relative; }}
.sig svg {{ position: absolute; left: 4mm; top: 1mm; overflow: visible; }}
{extra}
"""


def header(form):
    title, fid = TITLES[form["kind"]]
    instr = "".join(f"{E(t)}<br>" for t in INSTRUCTIONS[form["kind"]])
    return f"""
<div class="top"><div class="logo"><div class="mark"></div><div>TjänsteID-service<small>Regionens kortexpedition för
eTjänstekort</small></div></div><div class="fid">{fid}</div></div>
<h1>{E(title)}</h1>
<p class="instr">{instr}</p>"""


def footer(form, n=1, of=1):
    fid = TITLES[form["kind"]][1]
    return f'<div class="footer"><span>{fid} · utgåva 2025-03</span><span>Sida {n} av {of}</span></div>'


# --------------------------------------------------------------------------------------------
# Check marks
# --------------------------------------------------------------------------------------------

def hand_x(rng):
    """Two slightly curved strokes overshooting a 3.8 mm box (SVG user units = px)."""
    j = lambda a: a + rng.uniform(-1.2, 1.2)  # noqa: E731
    return (f'<svg style="left:-3px;top:-4px" width="21" height="21" viewBox="0 0 21 21">'
            f'<path d="M{j(0)},{j(1)} Q{j(10)},{j(9)} {j(20)},{j(20)}" stroke="#141414" stroke-width="1.7" fill="none" '
            f'stroke-linecap="round"/>'
            f'<path d="M{j(19)},{j(0)} Q{j(11)},{j(11)} {j(1)},{j(19)}" stroke="#141414" stroke-width="1.6" '
            f'fill="none" stroke-linecap="round"/></svg>')


def ring(rng):
    """An SVG ellipse (slightly open, hand-drawn) around the option word."""
    a = rng.uniform(-0.15, 0.15)
    return (f'<svg class="ring" style="left:-16px;top:-9px;width:calc(100% + 30px);height:calc(100% + 18px)" '
            f'viewBox="0 0 100 40" preserveAspectRatio="none">'
            f'<path d="M{52 + a * 20},3 C88,2 99,12 97,21 C95,33 70,38 48,37 C20,36 2,30 3,19 C4,8 28,2 60,5" '
            f'stroke="#1b1b6e" stroke-width="1.6" fill="none" vector-effect="non-scaling-stroke"/></svg>')


def option(text, marked, style, rng):
    t = E(text)
    if style == "tickbox":
        return f'<span class="opt"><span class="box">{"✓" if marked else ""}</span>{t}</span>'
    if style == "xbox":
        return f'<span class="opt"><span class="box">{"✗" if marked else ""}</span>{t}</span>'
    if style == "ballot":
        return f'<span class="opt"><span class="glyph">{"☒" if marked else "☐"}</span>{t}</span>'
    if style == "filled":
        return f'<span class="opt"><span class="box{" filled" if marked else ""}"></span>{t}</span>'
    if style == "svgx":
        return f'<span class="opt"><span class="box">{hand_x(rng) if marked else ""}</span>{t}</span>'
    if style == "circle":
        return f'<span class="opt">{t}{ring(rng) if marked else ""}</span>'
    if style == "paren":
        return f'<span class="opt"><span class="paren">{"(X)" if marked else "( )"}</span>{t}</span>'
    raise ValueError(style)


def options(form, field, rng):
    marked = form["marks"].get(field, set())
    return "".join(option(text, key in marked, form["mark"], rng) for key, text in OPTIONS[field])


# --------------------------------------------------------------------------------------------
# Signature
# --------------------------------------------------------------------------------------------

def scribble(rng, w=200, h=56):
    """A handwritten-looking signature: a few connected cubic Bézier strokes, a final flourish."""
    parts = []
    x, y = rng.uniform(4, 12), h * rng.uniform(0.45, 0.7)
    d = f"M{x:.1f},{y:.1f}"
    for _ in range(rng.randint(5, 8)):
        nx = x + rng.uniform(12, 26)
        ny = h * rng.uniform(0.15, 0.85)
        c1 = min(max(y - rng.uniform(-16, 20), 2), h - 2)
        c2 = min(max(ny + rng.uniform(-16, 20), 2), h - 2)
        d += f" C{x + rng.uniform(2, 10):.1f},{c1:.1f} {nx - rng.uniform(2, 10):.1f},{c2:.1f} {nx:.1f},{ny:.1f}"
        x, y = nx, ny
    parts.append(d)
    # underline flourish
    y0 = h * rng.uniform(0.75, 0.92)
    parts.append(f"M{rng.uniform(6, 20):.1f},{y0:.1f} C{w * 0.4:.1f},{y0 + 6:.1f} {w * 0.7:.1f},{y0 - 8:.1f} "
                 f"{min(x + 10, w - 4):.1f},{y0 - rng.uniform(2, 10):.1f}")
    paths = "".join(f'<path d="{p}" stroke="#1a2a86" stroke-width="1.5" fill="none" stroke-linecap="round" '
                    f'stroke-linejoin="round"/>' for p in parts)
    return f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}">{paths}</svg>'


def signature(form, rng):
    sig = form.get("signature", "none")
    if sig == "scribble":
        return scribble(rng)
    if sig == "typed":
        return f'<span class="val" style="position:absolute;left:5mm;top:6mm">{E(form["values"].get("vc_namn", ""))}</span>'
    if sig == "none":
        return ""
    raise ValueError(sig)


def labels_of(form):
    return ORDER_LABELS if form["kind"] == "order" else DEREG_LABELS


def value_html(form, f, rng):
    if f in CHOICES:
        return options(form, f, rng)
    return E(form["values"].get(f, "") or "")


# --------------------------------------------------------------------------------------------
# Designs
# --------------------------------------------------------------------------------------------

GRID_CSS = """
h2 { font-size: 11pt; margin: 4mm 0 1.5mm 0; }
.grid { display: grid; grid-template-columns: 1fr 1fr; border-left: 0.8pt solid #222; border-top: 0.8pt solid #222; }
.cell { border-right: 0.8pt solid #222; border-bottom: 0.8pt solid #222; padding: 1mm 2.2mm 1.6mm 2.2mm;
        min-height: 10.5mm; box-sizing: border-box; }
.cell.wide { grid-column: 1 / 3; }
.cell .lbl { font-size: 7.5pt; color: #222; }
.cell .val { font-size: 11.5pt; margin-top: 1.2mm; min-height: 5mm; }
.cell.sig { min-height: 19mm; }
"""

WIDE = {"vardgivare_namn", "utlamningsstalle", "bestallningstyp", "utlamning", "underskrift", "namn",
        "klippt_kort", "vc_epost"}


def design_grid(form, rng):
    labels = labels_of(form)
    out = [header(form)]
    for n, (sec, fields) in enumerate(SECTIONS[(form["kind"], form["order"])], 1):
        out.append(f"<h2>{n}. {E(HEADINGS[sec])}</h2><div class=\"grid\">")
        col = 0
        for f in fields:
            wide = f in WIDE
            if wide and col == 1:
                out.append('<div class="cell"></div>')
                col = 0
            if f == "underskrift":
                out.append(f'<div class="cell wide sig"><div class="lbl">{labels[f]}</div>{signature(form, rng)}</div>')
            else:
                out.append(f'<div class="cell{" wide" if wide else ""}"><div class="lbl">{E(labels[f])}</div>'
                           f'<div class="val">{value_html(form, f, rng)}</div></div>')
            col = 0 if wide else 1 - col
        if col == 1:
            out.append('<div class="cell"></div>')
        out.append("</div>")
    return "".join(out), GRID_CSS


TABLE_CSS = """
table { width: 100%; border-collapse: collapse; margin-bottom: 3.5mm; }
td, th { border: 0.8pt solid #333; padding: 1.6mm 2.5mm; font-size: 10pt; text-align: left; }
th { background: #c9d3dc; font-size: 9.5pt; letter-spacing: 0.04em; }
td.lbl { background: #e6e6e6; width: 36%; }
td.val { font-size: 11pt; }
td.sig { height: 17mm; }
"""


def design_table(form, rng):
    labels = labels_of(form)
    out = [header(form)]
    for sec, fields in SECTIONS[(form["kind"], form["order"])]:
        out.append(f'<table><tr><th colspan="2">{E(HEADINGS[sec].upper())}</th></tr>')
        for f in fields:
            if f == "underskrift":
                out.append(f'<tr><td class="lbl">{labels[f]}</td><td class="sig">{signature(form, rng)}</td></tr>')
            else:
                out.append(f'<tr><td class="lbl">{E(labels[f])}</td><td class="val">{value_html(form, f, rng)}</td></tr>')
        out.append("</table>")
    return "".join(out), TABLE_CSS


LETTER_CSS = """
h2 { font-size: 10.5pt; margin: 4.5mm 0 1mm 0; font-variant: small-caps; letter-spacing: 0.03em; }
.row { display: flex; align-items: baseline; margin: 2.3mm 0 0 0; }
.row .lbl { font-weight: bold; font-size: 10pt; white-space: nowrap; margin-right: 3mm; }
.row .val { flex: 1; border-bottom: 1.1pt dotted #444; font-size: 11.5pt; padding-left: 2mm; min-height: 5.5mm; }
.row .val.hand { font-family: 'Z003', cursive; font-size: 15pt; color: #1a2a86; }
.row .opts { flex: 1; font-size: 10.5pt; padding-left: 2mm; }
.row .sigline { flex: 0 0 80mm; height: 17mm; border: 0.9pt solid #333; }
"""


def design_letter(form, rng):
    labels = labels_of(form)
    hand = form.get("hand", False)
    out = [header(form)]
    for n, (sec, fields) in enumerate(SECTIONS[(form["kind"], form["order"])]):
        out.append(f"<h2>{'ABCD'[n]}. {E(HEADINGS[sec])}</h2>")
        for f in fields:
            if f == "underskrift":
                out.append(f'<div class="row"><span class="lbl">{labels[f]}:</span>'
                           f'<span class="sigline sig">{signature(form, rng)}</span></div>')
            elif f in CHOICES:
                out.append(f'<div class="row"><span class="lbl">{E(labels[f])}:</span>'
                           f'<span class="opts">{value_html(form, f, rng)}</span></div>')
            else:
                out.append(f'<div class="row"><span class="lbl">{E(labels[f])}:</span>'
                           f'<span class="val{" hand" if hand else ""}">{value_html(form, f, rng)}</span></div>')
    return "".join(out), LETTER_CSS


DESIGNS = {"grid": design_grid, "table": design_table, "letter": design_letter}

COVER = [
    "Följebrev",
    "",
    "Hej TjänsteID-service!",
    "",
    "Här kommer en beställning av eTjänstekort för en ny medarbetare hos oss. Blanketten finns på "
    "nästa sida och är underskriven av mig som verksamhetschef.",
    "Hör gärna av er om något saknas eller är oklart.",
    "",
    "Med vänliga hälsningar",
]


def document(forms, cover=None):
    """One HTML document: an optional cover letter page, then one page per form."""
    first = forms[0]
    pages = []
    css = set()
    total = len(forms) + (1 if cover else 0)
    n = 0
    if cover:
        n += 1
        paras = []
        for i, ln in enumerate(COVER + [cover]):
            if i == 0:
                paras.append(f"<h1 style='font-size:15pt;margin-top:20mm'>{E(ln)}</h1>")
            elif ln == "":
                paras.append("<div style='height:4mm'></div>")
            else:
                paras.append(f"<p style='font-size:11pt;line-height:1.5;margin:0'>{E(ln)}</p>")
        pages.append(f'<div class="page">{"".join(paras)}<div class="footer"><span>Följebrev</span>'
                     f'<span>Sida {n} av {total}</span></div></div>')
    for form in forms:
        n += 1
        rng = random.Random(form.get("seed", 0))
        body, extra = DESIGNS[form["design"]](form, rng)
        css.add(extra)
        pages.append(f'<div class="page">{body}{footer(form, n, total)}</div>')
    style = page_css(first["font"], first["vfont"], "".join(sorted(css)))
    return (f'<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>blankett</title>'
            f'<style>{style}</style></head><body>{"".join(pages)}</body></html>')
