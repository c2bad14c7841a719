"""The three layouts of the third fixture family, for both form kinds.

A form is a dict:
  kind      "order" | "deregistration"
  layout    "A" (label left, value right on the same line, `Label:`),
            "B" (label at the top of a box, value below it, two boxes a row),
            "C" (two-column ruled table: label cell | value cell, labels without colon)
  order     "std" | "alt" (sections and labels in another order)
  family    a key of draw.FONTS (labels and values)
  mark      check-mark style: tick (✓ in a drawn box) | ballot-x (☒/☐) | ballot-check (☑/☐) |
            tick-glyph (✓/☐ as characters) | drawn-x (two strokes over a drawn box) |
            filled (a filled square in a drawn box) | bracket (`[X]`/`[ ]` in DejaVu Sans Mono).
            Text PDFs use only the character styles: a mark drawn as vector graphics is not in
            the text layer, and SPEC §2.2 defines marks in text as characters.
  values    field -> the text drawn ("" or absent: the box is left empty)
  marks     choice field -> set of option keys marked
  signature "scribble" | "image" | "typed" | "none"
  seed      for the signature scribble
"""

import random

from draw import signature_strokes, signature_image, text_width

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

SECTIONS = {
    ("order", "std"): [
        ("Vårdgivare och vårdenhet", ["vardgivare_namn", "vardgivare_orgnr", "vardenhet_namn", "vardenhet_hsaid"]),
        ("Kortinnehavare", ["fornamn", "efternamn", "personnummer", "epost", "mobil", "befattning"]),
        ("Beställning och utlämning", ["bestallningstyp", "utlamning", "utlamningsstalle"]),
        ("Verksamhetschef och underskrift", ["vc_namn", "vc_epost", "vc_telefon", "datum", "underskrift"]),
    ],
    ("order", "alt"): [
        ("Kortinnehavare", ["personnummer", "efternamn", "fornamn", "befattning", "mobil", "epost"]),
        ("Enhet och vårdgivare", ["vardenhet_namn", "vardenhet_hsaid", "vardgivare_namn", "vardgivare_orgnr"]),
        ("Kort och leverans", ["utlamning", "utlamningsstalle", "bestallningstyp"]),
        ("Intygande av verksamhetschef", ["datum", "vc_namn", "vc_telefon", "vc_epost", "underskrift"]),
    ],
    ("deregistration", "std"): [
        ("Kortinnehavare", ["namn", "personnummer", "kortnummer"]),
        ("Enhet", ["vardenhet_namn", "vardenhet_hsaid"]),
        ("Bekräftelse", ["klippt_kort", "vc_namn", "datum", "underskrift"]),
    ],
    ("deregistration", "alt"): [
        ("Kortet", ["kortnummer", "namn", "personnummer"]),
        ("Bekräftelse av verksamhetschef", ["klippt_kort", "vardenhet_namn", "vardenhet_hsaid", "vc_namn", "datum",
                                            "underskrift"]),
    ],
}

TITLES = {
    "order": ("Beställning av eTjänstekort", "TJID-101"),
    "deregistration": ("Avregistrering av eTjänstekort", "TJID-102"),
}
INSTRUCTION = {
    "order": "Fyll i samtliga fält tydligt. Blanketten skrivs under av verksamhetschefen och skickas inskannad.",
    "deregistration": "Klipp kortet genom chipet innan blanketten skickas till TjänsteID-service.",
}

INK = (0, 0, 0)


def draw_option(page, x, baseline, text, marked, style, family, size):
    """A box (or bracket) before the option text; returns the x after the option."""
    box = size * 0.95
    top = baseline - size * 0.82
    if style == "bracket":
        mark = "[X]" if marked else "[ ]"
        page.text(x, baseline, mark, "dejavu-mono", size)
        x += text_width(mark, "dejavu-mono", size) + size * 0.45
    elif style in ("ballot-x", "ballot-check", "tick-glyph"):
        glyph = {"ballot-x": "☒", "ballot-check": "☑", "tick-glyph": "✓"}[style] if marked else "☐"
        gs = size * 1.3
        page.text(x, baseline + size * 0.12, glyph, "glyph", gs)
        x += text_width(glyph, "glyph", gs) + size * 0.4
    else:
        page.rect(x, top, box, box, width=0.7)
        if marked:
            if style == "tick":
                page.text(x + box * 0.05, baseline + size * 0.05, "✓", "glyph", size * 1.15)
            elif style == "drawn-x":
                page.line([(x - box * 0.1, top - box * 0.05), (x + box * 1.08, top + box * 1.1)], width=1.3)
                page.line([(x + box * 1.05, top - box * 0.1), (x - box * 0.05, top + box * 1.05)], width=1.3)
            elif style == "filled":
                ins = box * 0.16
                page.rect(x + ins, top + ins, box - 2 * ins, box - 2 * ins, fill=(0, 0, 0), stroke=False)
            else:
                raise ValueError(style)
        x += box + size * 0.45
    page.text(x, baseline, text, family, size)
    return x + text_width(text, family, size) + size * 1.6


def draw_options(page, x, baseline, form, field, size):
    marked = form["marks"].get(field, set())
    for key, text in OPTIONS[field]:
        if page.acro:
            box = size * 0.95
            page.radio(field, key, key in marked, x, baseline - size * 0.82, box)
            x += box + size * 0.45
            page.text(x, baseline, text, form["family"], size)
            x += text_width(text, form["family"], size) + size * 1.6
        else:
            x = draw_option(page, x, baseline, text, key in marked, form["mark"], form["family"], size)


def put_value(page, field, x, baseline, value, family, size, width):
    """A value: text on paper and in a text PDF, a filled text field in an AcroForm."""
    if page.acro:
        page.textfield(field, x - 2, baseline - size * 1.15, width, size * 1.6, value)
    elif value:
        page.text(x, baseline, value, family, size)


def draw_signature(page, form, x, y, w, h):
    sig = form.get("signature", "none")
    rng = random.Random(form.get("seed", 0))
    if sig == "scribble":
        page.curves(signature_strokes(rng, x + 4, y + 6, w - 8, h - 8), width=1.2)
    elif sig == "image":
        page.image(x + w * 0.12, y + h * 0.18, w * 0.6, h * 0.72, signature_image(rng, w * 0.6, h * 0.72))
    elif sig == "typed":
        page.text(x + 14, y + h * 0.65, form["values"].get("vc_namn", ""), form["family"], 11)
    elif sig != "none":
        raise ValueError(sig)


def draw_header(page, form, family):
    title, fid = TITLES[form["kind"]]
    # a logo-like mark: a ring and the office name
    page.rect(50, 38, 22, 22, width=2.0, colour=(0, 80, 150))
    page.rect(56, 44, 10, 10, fill=(0, 80, 150), stroke=False)
    page.text(80, 54, "TjänsteID-service", family, 9, bold=True, colour=(0, 80, 150))
    page.text(452, 54, fid, family, 9)
    page.text(50, 92, title, family, 17, bold=True)
    page.text(50, 110, INSTRUCTION[form["kind"]], family, 7.5)


def labels_of(form):
    return ORDER_LABELS if form["kind"] == "order" else DEREG_LABELS


def layout_a(page, form):
    fam = form["family"]
    labels = labels_of(form)
    draw_header(page, form, fam)
    lsize, vsize = 9.5, 10.5
    xl = 56
    xv = xl + max(text_width(labels[f] + ":", fam, lsize) for sec in SECTIONS[(form["kind"], form["order"])]
                  for f in sec[1]) + 16
    y = 140
    for n, (heading, fields) in enumerate(SECTIONS[(form["kind"], form["order"])], 1):
        page.text(xl - 6, y, f"{n}. {heading}", fam, 11, bold=True)
        page.line([(xl - 6, y + 4), (545, y + 4)], width=0.5)
        y += 22
        for f in fields:
            if f == "underskrift":
                page.text(xl, y, labels[f] + ":", fam, lsize)
                bx, by, bw, bh = xv, y - 14, 250, 44
                page.rect(bx, by, bw, bh, width=0.7)
                draw_signature(page, form, bx, by, bw, bh)
                y += bh + 4
                continue
            page.text(xl, y, labels[f] + ":", fam, lsize)
            if f in CHOICES:
                draw_options(page, xv, y, form, f, vsize)
            else:
                put_value(page, f, xv, y, form["values"].get(f, ""), fam, vsize, 545 - xv)
            y += 21
        y += 10


def layout_b(page, form):
    fam = form["family"]
    labels = labels_of(form)
    draw_header(page, form, fam)
    x0, full = 50, 495
    half = (full - 6) / 2
    y = 126
    letters = "ABCDE"
    for n, (heading, fields) in enumerate(SECTIONS[(form["kind"], form["order"])]):
        page.rect(x0, y, full, 16, fill=(215, 215, 215), stroke=False)
        page.text(x0 + 5, y + 11.5, f"{letters[n]}. {heading.upper()}", fam, 9, bold=True)
        y += 20
        col = 0
        for f in fields:
            wide = f in CHOICES or f in ("utlamningsstalle", "underskrift", "vardgivare_namn", "namn")
            if wide and col == 1:
                y += 38
                col = 0
            h = 58 if f == "underskrift" else 34
            w = full if wide else half
            x = x0 + (0 if col == 0 else half + 6)
            page.rect(x, y, w, h, width=0.6)
            page.text(x + 4, y + 9.5, labels[f], fam, 8)
            if f == "underskrift":
                draw_signature(page, form, x + 4, y + 12, w * 0.6, h - 14)
            elif f in CHOICES:
                draw_options(page, x + 8, y + 27, form, f, 10.5)
            else:
                put_value(page, f, x + 6, y + 27, form["values"].get(f, ""), fam, 11, w - 12)
            if wide:
                y += h + 4
                col = 0
            elif col == 0:
                col = 1
            else:
                col = 0
                y += h + 4
        if col == 1:
            y += 38
        y += 8


def layout_c(page, form):
    fam = form["family"]
    labels = labels_of(form)
    draw_header(page, form, fam)
    x0, xm, x1 = 50, 232, 545
    y = 128
    for heading, fields in SECTIONS[(form["kind"], form["order"])]:
        page.rect(x0, y, x1 - x0, 18, fill=(235, 235, 235), width=0.6)
        page.text(x0 + 5, y + 13, heading.upper(), fam, 9.5, bold=True)
        y += 18
        for f in fields:
            h = 48 if f == "underskrift" else 21
            page.rect(x0, y, xm - x0, h, width=0.6)
            page.rect(xm, y, x1 - xm, h, width=0.6)
            page.text(x0 + 5, y + 14.5, labels[f], fam, 9.5)
            if f == "underskrift":
                draw_signature(page, form, xm + 6, y + 3, 240, h - 6)
            elif f in CHOICES:
                draw_options(page, xm + 6, y + 15, form, f, 10)
            else:
                put_value(page, f, xm + 6, y + 15, form["values"].get(f, ""), fam, 10.5, x1 - xm - 12)
            y += h
        y += 12


LAYOUTS = {"A": layout_a, "B": layout_b, "C": layout_c}


def draw_form(page, form):
    if page.acro:
        # the form id as a hidden field, as the office's fillable form carries it
        page.c.acroForm.textfield(name="blankett", value=TITLES[form["kind"]][1], x=0, y=0, width=1, height=1,
                                  borderWidth=0, annotationFlags="hidden")
    LAYOUTS[form["layout"]](page, form)


def draw_letter(page, lines, family):
    """A cover letter or instruction page: plain paragraphs, no form title, no labels."""
    y = 90
    for ln in lines:
        if ln.startswith("# "):
            page.text(60, y, ln[2:], family, 14, bold=True)
            y += 28
        elif ln == "":
            y += 12
        else:
            page.text(60, y, ln, family, 10.5)
            y += 16
