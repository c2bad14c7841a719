#!/usr/bin/python3
"""Generates fixtures/family4: the fourth fixture family.

Forms written as HTML pages (three designs of this generator's own), printed to PDF by headless
Chromium, rasterised by pdftoppm, captured by ImageMagick as scans, office copies, phone photos
and faxes (img2pdf for image-only PDFs), mailed as .eml, each with a .json holding the expected
`process --json` output written from what was drawn (never from the reader's output).

    /usr/bin/python3 scripts/family4/generate.py [--out DIR] [--json-only] [--only NAME...] [--previews DIR]

Run from anywhere; the default output is fixtures/family4 of this repository. See README.md.
"""

import argparse
import base64
import datetime as dt
import json
import os
import random
import shutil
import sys
import zlib
from email.header import Header

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree when a test runs this
sys.path.insert(0, HERE)
REPO = os.path.dirname(os.path.dirname(HERE))

from values import (DEREG_FIELDS, ORDER_FIELDS, dereg_form, email_date,  # noqa: E402
                    order_form)

FAMILY = "family4"


def C(name, day, forms, capture, *, design, font, vfont=None, mark, order="std", signature="scribble",
      cover=False, body="attach", hand=False):
    """One email. `forms`: order_form / dereg_form dicts; `capture`: how it reaches the mailbox;
    `font`/`vfont`: labels' and values' fonts (design.FONTS); `cover`: a cover letter page first;
    `hand`: values in the handwriting-like script font (letter design)."""
    return dict(name=name, day=day, forms=forms, capture=capture, design=design, font=font,
                vfont=vfont or font, mark=mark, order=order, signature=signature, cover=cover, body=body,
                hand=hand)


def cases():
    out = []

    def D(day):
        return email_date(day).date()

    # --- valid orders: flatbed scans --------------------------------------------------------
    out.append(C("o01_grid-nimbussans_tickbox_scan200-jpeg80", 16,
                 [order_form("anna", D(16), pnr="short", mobile=5)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=80, skew=0.6),
                 design="grid", font="nimbus-sans", mark="tickbox"))
    out.append(C("o02_table-bookman_ballot_scan300-jpeg60-skew-1.8", 17,
                 [order_form("mohammed", D(17), bt=("Ersattning",), utl=("Utkorning",), date_fmt="text",
                             mobile=1)],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=60, skew=-1.8),
                 design="table", font="urw-bookman", vfont="nimbus-mono", mark="ballot"))
    out.append(C("o03_letter-c059_svgx_scan150-jpeg70-blur", 17,
                 [order_form("bo", D(17), bt=("Fornyelse",), pnr="nodash", date_fmt="compact", mobile=2)],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=70, skew=1.1, blur=0.6, noise=0.5),
                 design="letter", font="c059", mark="svgx"))
    out.append(C("o04_grid-p052_filled_scan200-png-bitonal", 18,
                 [order_form("sara", D(18), pnr="full", date_fmt="slash", mobile=6)],
                 dict(type="scan", dpi=200, fmt="png", bitonal=True, skew=-0.8),
                 design="grid", font="p052", vfont="nimbus-roman", mark="filled"))
    out.append(C("o05_table-nimbusroman_paren_scan200-pdf-jpeg55", 19,
                 [order_form("per", D(19), bt=("Ersattning",), pnr="short", mobile=4)],
                 dict(type="scan", dpi=200, fmt="pdf", quality=55, skew=2.2, noise=0.6),
                 design="table", font="nimbus-roman", vfont="nimbus-mono", mark="paren"))
    out.append(C("o06_letter-nimbussans-hand_circle_scan300-jpeg75", 19,
                 [order_form("karin", D(19), utl=("Utkorning",), pnr="full", date_fmt="text", mobile=0,
                             title="Specialistsjuksköterska")],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=75, skew=0.9),
                 design="letter", font="nimbus-sans", vfont="z003", mark="circle", hand=True))
    out.append(C("o07_grid-urwgothic_xbox_scan150-png-grey", 20,
                 [order_form("lars", D(20), bt=("Fornyelse",), pnr="short", date_fmt="short", mobile=7,
                             title="Distriktsläkare")],
                 dict(type="scan", dpi=150, fmt="png", skew=-1.4),
                 design="grid", font="urw-gothic", vfont="nimbus-sans", mark="xbox"))
    # --- valid orders: copier, photos, faxes, orientation ----------------------------------------
    out.append(C("o08_table-c059_filled_copier200-png-dust-strip", 20,
                 [order_form("mohammed", D(20), pnr="nodash", date_fmt="iso", mobile=3)],
                 dict(type="copier", dpi=200, fmt="png", edge="left", specks=90, skew=0.5),
                 design="table", font="c059", mark="filled"))
    out.append(C("o09_grid-nimbussans_svgx_copier300-pdf-strip-top", 23,
                 [order_form("anna", D(23), bt=("Ersattning",), date_fmt="compact", mobile=0)],
                 dict(type="copier", dpi=300, fmt="pdf", edge="top", specks=140, skew=-0.7),
                 design="grid", font="nimbus-sans", vfont="p052", mark="svgx"))
    out.append(C("o10_letter-p052_ballot_photo-warm", 23,
                 [order_form("sara", D(23), utl=("Utkorning",), pnr="short", mobile=1)],
                 dict(type="photo", jitter=0.04, shade=0.35, cast="warm"),
                 design="letter", font="p052", vfont="nimbus-mono", mark="ballot"))
    out.append(C("o11_grid-bookman_tickbox_photo-cool-strong", 24,
                 [order_form("bo", D(24), pnr="full", date_fmt="slash", mobile=5)],
                 dict(type="photo", jitter=0.065, shade=0.45, cast="cool"),
                 design="grid", font="urw-bookman", mark="tickbox"))
    out.append(C("o12_table-nimbussans_paren_photo-inline-html", 24,
                 [order_form("per", D(24), bt=("Fornyelse",), utl=("Utkorning",), pnr="short", mobile=6)],
                 dict(type="photo", jitter=0.045, shade=0.3, cast="warm", inline=True),
                 design="table", font="nimbus-sans", vfont="nimbus-mono", mark="paren", body="inline"))
    out.append(C("o13_grid-nimbusroman_filled_fax-g4-204x196", 25,
                 [order_form("karin", D(25), bt=("Ersattning",), date_fmt="short", mobile=2,
                             title="Specialistsjuksköterska")],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 design="grid", font="nimbus-roman", mark="filled"))
    out.append(C("o14_letter-nimbussans_paren_fax-png-204x98", 25,
                 [order_form("anna", D(25), pnr="full", mobile=7)],
                 dict(type="fax", xdpi=204, ydpi=98, dither=False, fmt="png"),
                 design="letter", font="nimbus-sans", vfont="nimbus-mono", mark="paren"))
    out.append(C("o15_table-p052_ballot_fax-png-dither-204x196", 26,
                 [order_form("mohammed", D(26), bt=("Fornyelse",), utl=("Utkorning",), pnr="short",
                             date_fmt="text", mobile=4)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=True, fmt="png"),
                 design="table", font="p052", mark="ballot"))
    out.append(C("o16_grid-c059_tickbox_scan200-jpeg70-upside-down", 26,
                 [order_form("lars", D(26), pnr="nodash", mobile=0, title="Distriktsläkare")],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70, rotate=180, skew=0.4),
                 design="grid", font="c059", vfont="nimbus-sans", mark="tickbox"))
    out.append(C("o17_table-urwgothic_xbox_scan200-pdf-rotated90", 27,
                 [order_form("sara", D(27), bt=("Ersattning",), date_fmt="compact", mobile=3)],
                 dict(type="scan", dpi=200, fmt="pdf", quality=70, rotate=90),
                 design="table", font="urw-gothic", vfont="nimbus-roman", mark="xbox"))
    # --- two pages: a cover letter before the form -------------------------------------------
    out.append(C("o18_letter-bookman_svgx_scan200-pdf-cover-letter-first", 30,
                 [order_form("bo", D(30), utl=("Utkorning",), pnr="short", date_fmt="slash", mobile=1)],
                 dict(type="scan", dpi=200, fmt="pdf", quality=65, skew=-1.0),
                 design="letter", font="urw-bookman", vfont="c059", mark="svgx", cover=True))
    out.append(C("o19_grid-nimbussans_filled_fax-g4-two-pages-cover", 30,
                 [order_form("per", D(30), pnr="short", mobile=5)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 design="grid", font="nimbus-sans", mark="filled", cover=True))
    # --- digital: the HTML printed to PDF by Chromium (a text layer; character marks only) ----
    out.append(C("t01_table-p052_ballot_chromium-pdf", 18,
                 [order_form("anna", D(18), bt=("Fornyelse",), date_fmt="text", mobile=2)],
                 dict(type="text"), design="table", font="p052", vfont="nimbus-sans", mark="ballot"))
    out.append(C("t02_letter-nimbusroman_paren_chromium-pdf_unsigned", 21,
                 [order_form("mohammed", D(21), pnr="short", mobile=6)],
                 dict(type="text"), design="letter", font="nimbus-roman", vfont="nimbus-mono", mark="paren",
                 signature="none"))

    # --- rejected orders (every OCR-read one held for staff, SPEC §4.4) ------------------------
    out.append(C("r01_grid-p052_tickbox_scan200-jpeg75_unsigned", 17,
                 [order_form("sara", D(17), pnr="short", mobile=0)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=75, skew=-0.5),
                 design="grid", font="p052", mark="tickbox", signature="none"))
    out.append(C("r02_table-nimbussans_ballot_scan200-jpeg70_typed-name-only", 18,
                 [order_form("bo", D(18), bt=("Ersattning",), pnr="nodash", mobile=3)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70, skew=1.3),
                 design="table", font="nimbus-sans", vfont="c059", mark="ballot", signature="typed"))
    out.append(C("r03_letter-c059_filled_scan150-jpeg65_both-bestallningstyp", 20,
                 [order_form("anna", D(20), bt=("Nytt", "Ersattning"), mobile=4)],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=65),
                 design="letter", font="c059", vfont="nimbus-sans", mark="filled"))
    out.append(C("r04_grid-nimbusroman_svgx_scan200-png_no-utlamning", 23,
                 [order_form("per", D(23), utl=(), pnr="short", mobile=1)],
                 dict(type="scan", dpi=200, fmt="png", skew=0.8),
                 design="grid", font="nimbus-roman", mark="svgx"))
    out.append(C("r05_table-bookman_tickbox_scan300-jpeg60_bad-check-digit", 24,
                 [order_form("sara", D(24), mobile=5,
                             override={"personnummer": ("19900101-0018", "19900101-0018")},
                             reasons=[("invalid_field", "personnummer")])],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=60, skew=-1.2),
                 design="table", font="urw-bookman", vfont="nimbus-mono", mark="tickbox"))
    out.append(C("r06_letter-nimbussans_ballot_copier200-png_not-in-kiv", 25,
                 [order_form("nils", D(25), pnr="short", mobile=6,
                             reasons=[("person_not_in_kiv", "personnummer")])],
                 dict(type="copier", dpi=200, fmt="png", edge="right", specks=70, skew=0.6),
                 design="letter", font="nimbus-sans", vfont="p052", mark="ballot"))
    out.append(C("r07_grid-urwgothic_filled_photo-warm_provider-not-connected", 26,
                 [order_form("elin", D(26), mobile=2,
                             reasons=[("provider_not_connected", "vardgivare_orgnr")])],
                 dict(type="photo", jitter=0.04, shade=0.3, cast="warm"),
                 design="grid", font="urw-gothic", vfont="nimbus-sans", mark="filled"))
    out.append(C("r08_table-c059_paren_fax-g4_mobile-is-landline", 27,
                 [order_form("bo", D(27), pnr="short",
                             override={"mobil": ("0302-52 14 80", "0302-52 14 80")},
                             reasons=[("invalid_field", "mobil")])],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 design="table", font="c059", vfont="nimbus-mono", mark="paren"))
    out.append(C("r09_letter-p052_circle_scan200-jpeg70_missing-mobil-unsigned", 30,
                 [order_form("mohammed", D(30), blank=("mobil",), pnr="short")],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70, skew=1.6),
                 design="letter", font="p052", vfont="nimbus-roman", mark="circle", signature="none"))
    out.append(C("r10_grid-nimbussans_xbox_scan200-jpeg65_date-in-future", 31,
                 [order_form("anna", D(31), days_before=-9, mobile=3, reasons=[("invalid_field", "datum")])],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=65, skew=-0.9, noise=0.4),
                 design="grid", font="nimbus-sans", vfont="nimbus-mono", mark="xbox"))

    # --- deregistrations ------------------------------------------------------------------------
    out.append(C("d01_grid-nimbussans_tickbox_scan200-jpeg75_ja", 17,
                 [dereg_form("bo", D(17), card_serial=3141592)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=75, skew=0.7),
                 design="grid", font="nimbus-sans", mark="tickbox"))
    out.append(C("d02_table-bookman_ballot_photo-cool_ja", 19,
                 [dereg_form("sara", D(19), card_serial=2718281, date_fmt="text", pnr="full")],
                 dict(type="photo", jitter=0.05, shade=0.35, cast="cool"),
                 design="table", font="urw-bookman", vfont="nimbus-mono", mark="ballot"))
    out.append(C("d03_letter-c059-alt_circle_fax-png-204x196_nej", 24,
                 [dereg_form("mohammed", D(24), card_serial=1618033, klippt=("Nej",), date_fmt="compact")],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="png"),
                 design="letter", font="c059", vfont="nimbus-sans", mark="circle", order="alt"))
    out.append(C("d04_grid-p052_svgx_copier200-pdf_employment-gone", 26,
                 [dereg_form("sven", D(26), unit="101", card_serial=1414213,
                             warnings=[("kiv_employment_missing", None)])],
                 dict(type="copier", dpi=200, fmt="pdf", edge="bottom", specks=80),
                 design="grid", font="p052", vfont="nimbus-sans", mark="svgx"))
    out.append(C("d05_table-nimbusroman_filled_scan300-jpeg70-upside-down_checksum-no-hsaid", 27,
                 [dereg_form("anna", D(27), card_serial=1732050, card_valid=False, show_hsaid=False,
                             date_fmt="slash")],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=70, rotate=180, skew=-0.6),
                 design="table", font="nimbus-roman", mark="filled"))
    out.append(C("d06_letter-nimbussans_ballot_chromium-pdf_ja", 30,
                 [dereg_form("lars", D(30), card_serial=2236067, date_fmt="short")],
                 dict(type="text"), design="letter", font="nimbus-sans", vfont="c059", mark="ballot"))
    return out


# ---------------------------------------------------------------------------------------------
# Expected JSON
# ---------------------------------------------------------------------------------------------

def variant(case):
    return {"text": "text", "scan": "scan", "copier": "scan", "photo": "photo", "fax": "fax"}[case["capture"]["type"]]


def expected_case(case, form):
    reasons = list(form["reasons"])
    if form["kind"] == "order" and case["signature"] in ("none", "typed"):
        reasons.append({"code": "signature_missing", "field": "underskrift"})
    decision = "rejected" if reasons else "queued"
    verify = []
    if reasons and variant(case) != "text":
        # SPEC §4.4: every rejection of an OCR-read form is held; `verify` names the fields the
        # reasons rest on (null for a reason on no field). Low-confidence fields may come on top.
        for r in reasons:
            if r["field"] not in verify:
                verify.append(r["field"])
    order = ORDER_FIELDS if form["kind"] == "order" else DEREG_FIELDS
    return {
        "kind": form["kind"],
        "decision": decision,
        "reasons": reasons,
        "warnings": form["warnings"],
        "verify": verify,
        "fields": {k: form["fields"][k] for k in order},
    }


def capture_label(c):
    t = c["type"]
    if t == "text":
        return "chromium-pdf"
    if t == "photo":
        return f"photo-{c['cast']}" + ("-inline" if c.get("inline") else "")
    if t == "fax":
        return f"fax-{c['fmt']}-{c['xdpi']}x{c['ydpi']}-{'dither' if c.get('dither') else 'threshold'}"
    if t == "copier":
        return f"copier{c['dpi']}-{c['fmt']}-bitonal-strip-{c['edge']}"
    s = f"scan{c['dpi']}-{c['fmt']}"
    if c["fmt"] in ("jpeg", "pdf"):
        s += f"-q{c.get('quality', 80)}"
    if c.get("bitonal"):
        s += "-bitonal"
    if c.get("skew"):
        s += f"-skew{c['skew']:+g}"
    if c.get("rotate"):
        s += f"-rot{c['rotate']}"
    if c.get("noise") or c.get("blur"):
        s += "-noise/blur"
    return s


def expected(case, out_rel):
    axes = {
        "variant": variant(case),
        "layout": case["design"],
        "label_order": case["order"],
        "font": case["font"] if case["vfont"] == case["font"] else f"{case['font']}+{case['vfont']}",
        "mark": case["mark"],
        "capture": capture_label(case["capture"]),
        "signature": case["signature"],
        "pages": ["cover"] if case["cover"] else [],
        "inline_html": case["body"] == "inline",
        "forms": len(case["forms"]),
    }
    return {
        "source": f"{out_rel}/{case['name']}.eml",
        "message_id": f"<{case['name']}@{FAMILY}.fixtures.tjid>",
        "decision": "processed",
        "ignored_reason": None,
        "cases": [expected_case(case, f) for f in case["forms"]],
        "axes": axes,
    }


# ---------------------------------------------------------------------------------------------
# Printing and capture
# ---------------------------------------------------------------------------------------------

def form_style(case, form):
    f = dict(form)
    f.update(design=case["design"], order=case["order"], font=case["font"], vfont=case["vfont"],
             mark=case["mark"], hand=case["hand"],
             signature=case["signature"] if form["kind"] == "order" else "scribble",
             seed=zlib.crc32(case["name"].encode()))
    return f


def printed(case, work):
    """The case's pages printed to PDF by Chromium; returns the PDF's path."""
    import capture as cap
    from design import document

    forms = [form_style(case, f) for f in case["forms"]]
    pdf = cap.print_pdf(document(forms, cover=case["forms"][0]["sender"][0] if case["cover"] else None), work)
    path = os.path.join(work, "printed.pdf")
    with open(path, "wb") as fh:
        fh.write(pdf)
    want = len(case["forms"]) + (1 if case["cover"] else 0)
    got = int(cap.run(["pdfinfo", path]).decode().split("Pages:")[1].split()[0])
    assert got == want, f"{case['name']}: Chromium printed {got} pages, {want} expected (a form overflows)"
    return path


def attachment(case):
    """(bytes, mime type, file name) of the email's one attachment (or inline image)."""
    import capture as cap

    c = case["capture"]
    seed = zlib.crc32(case["name"].encode())
    rng = random.Random(seed ^ 0x5EED)
    work = cap.workdir()
    try:
        pdf = printed(case, work)
        t = c["type"]
        if t == "text":
            # Chromium's PDF carries a creation date and a random document id: fix both
            return reproducible_pdf(cap.read(pdf), seed), "application/pdf", "blankett.pdf"
        if t == "photo":
            (page,) = cap.rasterise(pdf, 160, work, colour=True)
            out = cap.photo(page, os.path.join(work, "photo.jpg"), rng, jitter=c["jitter"], shade=c["shade"],
                            cast=c["cast"], seed=seed % 100000)
            return cap.read(out), "image/jpeg", f"IMG_{email_date(case['day']):%Y%m%d}_0912.jpg"
        if t == "fax":
            pages = cap.rasterise(pdf, 200, work)
            date = email_date(case["day"]).strftime("%Y-%m-%d %H:%M")
            outs = []
            for i, p in enumerate(pages, 1):
                hdr = f"{date}   FRAN: +46 31 345 67 00   TILL: TJANSTEID-SERVICE   S. {i}/{len(pages)}"
                ext = "tif" if c["fmt"] == "g4" else "png"
                outs.append(cap.fax(p, os.path.join(work, f"fax{i}.{ext}"), rng, xdpi=c["xdpi"], ydpi=c["ydpi"],
                                    dither=c.get("dither", False), header=hdr, seed=seed % 100000 + i,
                                    skew=rng.uniform(-0.4, 0.4)))
            if c["fmt"] == "g4":
                if len(outs) > 1:
                    out = cap.tiff_pages(outs, os.path.join(work, "fax.tif"), c["xdpi"], c["ydpi"])
                else:
                    out = outs[0]
                return cap.read(out), "image/tiff", "fax_0313456700.tif"
            assert len(outs) == 1
            return cap.read(outs[0]), "image/png", "fax_0313456700.png"
        dpi = c["dpi"]
        pages = cap.rasterise(pdf, dpi, work)
        outs = []
        for i, p in enumerate(pages, 1):
            fmt = "jpg" if c["fmt"] in ("jpeg", "pdf") and t == "scan" else "png"
            o = os.path.join(work, f"cap{i}.{fmt}")
            if t == "copier":
                cap.copier(p, o, rng, dpi=dpi, skew=c.get("skew", 0.0), edge=c["edge"], specks=c["specks"],
                           rotate=c.get("rotate", 0), seed=seed % 100000 + i)
            else:
                cap.scan(p, o, rng, dpi=dpi, skew=c.get("skew", 0.0), blur=c.get("blur", 0.0),
                         noise=c.get("noise", 0.0), quality=c.get("quality", 80), bitonal=c.get("bitonal", False),
                         rotate=c.get("rotate", 0), seed=seed % 100000 + i)
            outs.append(cap.read(o))
        if c["fmt"] == "pdf":
            return cap.to_pdf(outs, dpi), "application/pdf", "skanning.pdf"
        assert len(outs) == 1
        if c["fmt"] == "jpeg":
            return outs[0], "image/jpeg", "skanning.jpg"
        return outs[0], "image/png", "skanning.png"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reproducible_pdf(pdf, seed):
    """Chromium (Skia) writes /CreationDate, /ModDate and sometimes an /ID: replace them in place
    (same length, so the xref offsets stay right)."""
    import re

    def fixed_date(m):
        s = m.group(0)
        inner = m.group(1)
        rep = b"D:20261101000000"
        rep = (rep + inner[len(rep):]) if len(inner) >= len(rep) else rep[:len(inner)]
        rep = rep[:len(inner)].ljust(len(inner), b"0")
        return s.replace(inner, rep)

    pdf = re.sub(rb"/(?:CreationDate|ModDate)\s*\(([^)]*)\)", fixed_date, pdf)
    digest = ("%032x" % (seed * 0x9E3779B97F4A7C15 % (1 << 128))).encode()

    def same(m):
        n1, n2 = len(m.group(1)), len(m.group(2))
        return m.group(0).replace(m.group(1), digest[:n1].ljust(n1, b"0")).replace(
            m.group(2), digest[:n2].ljust(n2, b"0"))

    return re.sub(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*\]", same, pdf)


# ---------------------------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------------------------

def b64lines(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def enc_header(s):
    return Header(s, "utf-8").encode() if any(ord(ch) > 127 for ch in s) else s


def qp_utf8(text):
    import quopri

    return quopri.encodestring(text.encode("utf-8")).decode()


def build_email(case, att):
    name, mail = case["forms"][0]["sender"]
    date = email_date(case["day"], 8 + case["day"] % 9, (case["day"] * 11) % 60)
    kinds = {f["kind"] for f in case["forms"]}
    subject = {frozenset({"order"}): "Beställning av eTjänstekort",
               frozenset({"deregistration"}): "Avregistrering av kort"}.get(frozenset(kinds), "Blanketter")
    data, mime, fname = att
    tag = zlib.crc32(case["name"].encode())
    head = [
        f"From: {enc_header(name)} <{mail}>",
        "To: =?utf-8?q?Tj=C3=A4nsteID-service?= <tjansteid@vgregion.se>",
        f"Subject: {enc_header(subject)}",
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S %z')}",
        f"Message-ID: <{case['name']}@{FAMILY}.fixtures.tjid>",
        "MIME-Version: 1.0",
    ]
    text = f"Hej,\n\nbifogar blanketten.\n\nVänliga hälsningar\n{name}\n"
    if case["body"] == "inline":
        rel = f"=_rel4_{tag:08x}"
        alt = f"=_alt4_{tag:08x}"
        cid = f"foto.{tag:08x}@{FAMILY}"
        html = ("<html><body><div>Hej,</div><div>h&auml;r kommer blanketten, jag tog ett foto av den med "
                "telefonen.</div><div><br></div>"
                f"<div><img src=\"cid:{cid}\" width=\"520\" alt=\"IMG\"></div>"
                f"<div><br>V&auml;nliga h&auml;lsningar<br>{name}</div></body></html>\n")
        head.append(f'Content-Type: multipart/related; boundary="{rel}"; type="multipart/alternative"')
        parts = [
            f"--{rel}",
            f'Content-Type: multipart/alternative; boundary="{alt}"',
            "",
            f"--{alt}",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            qp_utf8(text),
            f"--{alt}",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            qp_utf8(html),
            f"--{alt}--",
            "",
            f"--{rel}",
            f"Content-Type: {mime}; name=\"{fname}\"",
            f"Content-Disposition: inline; filename=\"{fname}\"",
            f"Content-ID: <{cid}>",
            "Content-Transfer-Encoding: base64",
            "",
            b64lines(data),
            f"--{rel}--",
            "",
        ]
    else:
        mix = f"=_mix4_{tag:08x}"
        head.append(f'Content-Type: multipart/mixed; boundary="{mix}"')
        parts = [
            f"--{mix}",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            qp_utf8(text),
            f"--{mix}",
            f"Content-Type: {mime}; name=\"{fname}\"",
            f"Content-Disposition: attachment; filename=\"{fname}\"",
            "Content-Transfer-Encoding: base64",
            "",
            b64lines(data),
            f"--{mix}--",
            "",
        ]
    return ("\n".join(head) + "\n\n" + "\n".join(parts)).encode("utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", FAMILY))
    ap.add_argument("--json-only", action="store_true", help="write only the expected .json files")
    ap.add_argument("--only", nargs="*", help="only these case names (prefix match)")
    ap.add_argument("--previews", help="also write each attachment into this directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out_rel = f"fixtures/{FAMILY}"
    all_cases = cases()
    names = [c["name"] for c in all_cases]
    assert len(names) == len(set(names)), "case names are unique"
    for case in all_cases:
        if args.only and not any(case["name"].startswith(o) for o in args.only):
            continue
        exp = expected(case, out_rel)
        with open(os.path.join(args.out, case["name"] + ".json"), "w", encoding="utf-8") as fh:
            json.dump(exp, fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.write("\n")
        if args.json_only:
            continue
        att = attachment(case)
        with open(os.path.join(args.out, case["name"] + ".eml"), "wb") as fh:
            fh.write(build_email(case, att))
        if args.previews:
            os.makedirs(args.previews, exist_ok=True)
            with open(os.path.join(args.previews, case["name"] + "." + att[2].rsplit(".", 1)[1]), "wb") as fh:
                fh.write(att[0])
        print(f"{case['name']}: {len(att[0]) // 1024} KiB", flush=True)


if __name__ == "__main__":
    main()
