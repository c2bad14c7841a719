#!/usr/bin/python3
"""Generates fixtures/family3: the third fixture family of issue 19 (item 7).

Forms drawn by Pillow (raster) and reportlab (text PDFs) in three layouts of this generator's
own design, captured as scans, phone photos and faxes by Pillow + numpy (+ img2pdf for
image-only PDFs), mailed as .eml, each with a .json holding the expected `process --json`
output written from what was drawn (never from the reader's output).

    /usr/bin/python3 scripts/family3/generate.py [--out DIR] [--json-only] [--only NAME...]

Run from anywhere; the default output is fixtures/family3 of this repository. See README.md.
"""

import argparse
import base64
import datetime as dt
import json
import os
import random
import sys
import zlib
from email.header import Header

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree when a test runs this
sys.path.insert(0, HERE)
REPO = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------------------------------------
# The directory: people, units and providers of fixtures/kiv.ldif and fixtures/providers.csv
# ---------------------------------------------------------------------------------------------

UNITS = {
    "101": dict(provider="Västra Götalandsregionen", orgnr="232100-0131", orgnr_written="232100-0131",
                unit="Vårdcentralen Ekmansgatan", hsaid="SE2321000131-E000000000101",
                vc="Örjan Lindqvist", vc_mail="orjan.lindqvist@vgregion.se", vc_tel="031-345 67 00",
                stalle="Receptionen, Vårdcentralen Ekmansgatan"),
    "102": dict(provider="Västra Götalandsregionen", orgnr="232100-0131", orgnr_written="2321000131",
                unit="Närhälsan Lerum vårdcentral", hsaid="SE2321000131-E000000000102",
                vc="Karin Berg", vc_mail="karin.berg@vgregion.se", vc_tel="0302-52 10 00",
                stalle="Kortexpeditionen Lerum"),
    "301": dict(provider="Hälsan Väst AB", orgnr="556016-0680", orgnr_written="556016-0680",
                unit="Hälsan Väst Mölndal", hsaid="SE5560160680-E000000000301",
                vc="Lars Ek", vc_mail="lars.ek@halsanvast.se", vc_tel="031-87 65 43",
                stalle="Entrén, Hälsan Väst Mölndal"),
    # a sole trader: the organisation number is the owner's personnummer
    "tand": dict(provider="Tandläkare Per Karlsson", orgnr="19650302-4561", orgnr_written="650302-4561",
                 unit="Tandläkare Karlsson", hsaid="SE6503024561-E000000000001",
                 vc="Per Karlsson", vc_mail="per@tandlakarekarlsson.se", vc_tel="0520-123 45",
                 stalle="Kortexpeditionen Uddevalla"),
    # in the register, but connected only from 2027-01-01
    "fsyd": dict(provider="Friskvård Syd AB", orgnr="556677-1233", orgnr_written="556677-1233",
                 unit="Friskvård Syd Borås", hsaid="SE5566771233-E000000000001",
                 vc="Eva Nord", vc_mail="eva.nord@friskvardsyd.se", vc_tel="033-10 20 30",
                 stalle="Receptionen Borås"),
}

PEOPLE = {
    "anna": dict(fn="Anna-Karin", sn="Åström", pnr="19121212-1212", short="121212+1212",
                 mail="anna-karin.astrom@vgregion.se", title="Sjuksköterska", unit="101"),
    "mohammed": dict(fn="Mohammed", sn="Al-Sayed", pnr="19800161-3291", short="800161-3291",
                     mail="mohammed.al-sayed@vgregion.se", title="Läkare", unit="101"),
    "bo": dict(fn="Bo", sn="Ek", pnr="19820930-3455", short="820930-3455", mail="bo.ek@vgregion.se",
               title="Undersköterska", unit="102"),
    "karin": dict(fn="Karin", sn="Berg", pnr="19750615-2342", short="750615-2342",
                  mail="karin.berg@vgregion.se", title="Verksamhetschef", unit="102"),
    "sara": dict(fn="Sara", sn="Lind", pnr="19900101-0017", short="900101-0017",
                 mail="sara.lind@halsanvast.se", title="Barnmorska", unit="301"),
    "lars": dict(fn="Lars", sn="Ek", pnr="19881111-5677", short="881111-5677", mail="lars.ek@halsanvast.se",
                 title="Verksamhetschef", unit="301"),
    "per": dict(fn="Per", sn="Karlsson", pnr="19650302-4561", short="650302-4561",
                mail="per@tandlakarekarlsson.se", title="Tandläkare", unit="tand"),
    "elin": dict(fn="Elin", sn="Ung", pnr="19991231-2460", short="991231-2460", mail="elin.ung@friskvardsyd.se",
                 title="Fysioterapeut", unit="fsyd"),
    # no employment left in KIV (deregistration after the employment was removed)
    "sven": dict(fn="Sven", sn="Gammal", pnr="19550505-6787", short="550505-6787",
                 mail="sven.gammal@vgregion.se", title="Distriktsläkare", unit="101"),
    "orjan": dict(fn="Örjan", sn="Lindqvist", pnr="19700101-1233", short="700101-1233",
                  mail="orjan.lindqvist@vgregion.se", title="Verksamhetschef", unit="101"),
}

MOBILES = [("070-123 45 67", "+46701234567"), ("+46 73 555 12 34", "+46735551234"),
           ("0721-23 45 67", "+46721234567"), ("0046 76 987 65 43", "+46769876543"),
           ("0702 34 56 78", "+46702345678")]

SV_MONTHS = ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
             "oktober", "november", "december"]


def write_date(d, fmt):
    if fmt == "iso":
        return d.isoformat()
    if fmt == "compact":
        return d.strftime("%Y%m%d")
    if fmt == "short":
        return d.strftime("%y-%m-%d")
    if fmt == "slash":
        return f"{d.day}/{d.month} {d.year}"
    if fmt == "text":
        return f"{d.day} {SV_MONTHS[d.month - 1]} {d.year}"
    raise ValueError(fmt)


def luhn_digit(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return str((10 - total % 10) % 10)


def card_number(serial, valid=True):
    body = "9752" + "2679" + "0" + "01" + f"{serial:07d}"
    check = luhn_digit(body)
    if not valid:
        check = str((int(check) + 3) % 10)
    return body + check


def group4(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

ORDER_FIELDS = ["vardgivare_namn", "vardgivare_orgnr", "vardenhet_namn", "vardenhet_hsaid", "fornamn",
                "efternamn", "personnummer", "epost", "mobil", "befattning", "bestallningstyp", "utlamning",
                "utlamningsstalle", "vc_namn", "vc_epost", "vc_telefon", "datum"]
DEREG_FIELDS = ["namn", "personnummer", "kortnummer", "vardenhet_namn", "vardenhet_hsaid", "klippt_kort",
                "vc_namn", "datum"]


def order_form(person, email_date, *, days_before=2, bt=("Nytt",), utl=("Utlamningsstalle",),
               pnr="full", date_fmt="iso", mobile=0, blank=(), override=None, reasons=(), warnings=(),
               title=None):
    """The drawn values and the expected case of an order for `person`.

    `override`: field -> (drawn text, expected value) for values that break a rule; `reasons`:
    the reasons such values give (choices, blanks and the signature are added by `expect`).
    `title`: the Befattning written instead of KIV's title. A manager ordering their own card
    writes `Verksamhetschef`, a value that is also a label: kept where it follows `Befattning:`
    on the same line (layout A, where SPEC §2.1 makes it the value), replaced in the box and
    table layouts, where SPEC does not say whether such a text below a label is a value or the
    next label."""
    p = dict(PEOPLE[person])
    if title:
        p["title"] = title
    u = UNITS[p["unit"]]
    d = email_date - dt.timedelta(days=days_before)
    mob_w, mob_e = MOBILES[mobile % len(MOBILES)]
    pnr_w = {"full": p["pnr"], "short": p["short"], "nodash": p["pnr"].replace("-", "")}[pnr]
    drawn = {
        "vardgivare_namn": u["provider"], "vardgivare_orgnr": u["orgnr_written"],
        "vardenhet_namn": u["unit"], "vardenhet_hsaid": u["hsaid"],
        "fornamn": p["fn"], "efternamn": p["sn"], "personnummer": pnr_w, "epost": p["mail"],
        "mobil": mob_w, "befattning": p["title"],
        "utlamningsstalle": u["stalle"] if "Utlamningsstalle" in utl else "",
        "vc_namn": u["vc"], "vc_epost": u["vc_mail"], "vc_telefon": u["vc_tel"],
        "datum": write_date(d, date_fmt),
    }
    fields = {
        "vardgivare_namn": u["provider"], "vardgivare_orgnr": u["orgnr"],
        "vardenhet_namn": u["unit"], "vardenhet_hsaid": u["hsaid"],
        "fornamn": p["fn"], "efternamn": p["sn"], "personnummer": p["pnr"], "epost": p["mail"],
        "mobil": mob_e, "befattning": p["title"],
        "bestallningstyp": bt[0] if len(bt) == 1 else None,
        "utlamning": utl[0] if len(utl) == 1 else None,
        "utlamningsstalle": u["stalle"] if "Utlamningsstalle" in utl else None,
        "vc_namn": u["vc"], "vc_epost": u["vc_mail"], "vc_telefon": u["vc_tel"],
        "datum": d.isoformat(),
    }
    for f, (w, e) in (override or {}).items():
        drawn[f] = w
        fields[f] = e
    for f in blank:
        drawn[f] = ""
        fields[f] = None
    rs = [{"code": "missing_field", "field": f} for f in blank]
    for f, opts in (("bestallningstyp", bt), ("utlamning", utl)):
        if len(opts) == 0:
            rs.append({"code": "missing_field", "field": f})
        elif len(opts) > 1:
            rs.append({"code": "invalid_field", "field": f})
    rs.extend({"code": c, "field": f} for c, f in reasons)
    return dict(kind="order", values=drawn, marks={"bestallningstyp": set(bt), "utlamning": set(utl)},
                fields=fields, reasons=rs, warnings=[{"code": c, "field": f} for c, f in warnings],
                sender=(u["vc"], u["vc_mail"]))


def dereg_form(person, email_date, *, unit=None, days_before=1, klippt=("Ja",), card_serial=1234,
               card_valid=True, pnr="short", date_fmt="iso", show_hsaid=True, warnings=()):
    p = PEOPLE[person]
    u = UNITS[unit or p["unit"]]
    d = email_date - dt.timedelta(days=days_before)
    card = card_number(card_serial, card_valid)
    pnr_w = {"full": p["pnr"], "short": p["short"], "nodash": p["pnr"].replace("-", "")}[pnr]
    drawn = {
        "namn": f"{p['fn']} {p['sn']}", "personnummer": pnr_w, "kortnummer": group4(card),
        "vardenhet_namn": u["unit"], "vardenhet_hsaid": u["hsaid"] if show_hsaid else "",
        "vc_namn": u["vc"], "datum": write_date(d, date_fmt),
    }
    fields = {
        "namn": f"{p['fn']} {p['sn']}", "personnummer": p["pnr"], "kortnummer": card,
        "vardenhet_namn": u["unit"], "vardenhet_hsaid": u["hsaid"] if show_hsaid else None,
        "klippt_kort": klippt[0] if len(klippt) == 1 else None,
        "vc_namn": u["vc"], "datum": d.isoformat(),
    }
    rs = []
    if klippt == ("Nej",):
        rs.append({"code": "cut_card_not_confirmed", "field": "klippt_kort"})
    ws = [{"code": c, "field": f} for c, f in warnings]
    if not card_valid:
        ws.append({"code": "card_number_checksum", "field": "kortnummer"})
    return dict(kind="deregistration", values=drawn, marks={"klippt_kort": set(klippt)}, fields=fields,
                reasons=rs, warnings=ws, sender=(u["vc"], u["vc_mail"]))


def email_date(day, hour=9, minute=12):
    """Dates of the emails: November–December 2026, Swedish winter time."""
    return dt.datetime(2026, 11, 1, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=1))) + \
        dt.timedelta(days=day - 1)


FAMILIES = ["dejavu-sans", "liberation-serif", "dejavu-mono", "liberation-sans", "dejavu-serif"]
SANS = ["dejavu-sans", "liberation-sans"]
SERIF = ["liberation-serif", "dejavu-serif"]
MONO = ["dejavu-mono"]


def C(name, day, forms, capture, *, layout, family, mark, order="std", signature="scribble", pages=None,
      body="attach", note=""):
    """One email. `forms`: a list of form dicts (order_form / dereg_form, each may carry its own
    layout etc. under "style"); `capture`: how it reaches the mailbox; `pages`: extra pages
    (`cover` before, `instr` after)."""
    return dict(name=name, day=day, forms=forms, capture=capture, layout=layout, family=family, mark=mark,
                order=order, signature=signature, pages=pages or [], body=body, note=note)


def cases():
    out = []

    def D(day):
        return email_date(day).date()

    # --- valid orders, scans ------------------------------------------------------------------
    out.append(C("o01_A-sans_tick_scan150-jpeg85", 16,
                 [order_form("anna", D(16), pnr="full")],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=85),
                 layout="A", family="dejavu-sans", mark="tick"))
    out.append(C("o02_A-serif_ballotx_scan200-jpeg60-skew+1.5", 17,
                 [order_form("mohammed", D(17), bt=("Ersattning",), utl=("Utkorning",), pnr="short",
                             date_fmt="text", mobile=1)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=60, skew=1.5),
                 layout="A", family="liberation-serif", mark="ballot-x"))
    out.append(C("o03_A-mono_bracket_scan300-png", 18,
                 [order_form("bo", D(18), bt=("Fornyelse",), pnr="short", date_fmt="compact", mobile=2)],
                 dict(type="scan", dpi=300, fmt="png"),
                 layout="A", family="dejavu-mono", mark="bracket"))
    out.append(C("o04_B-sans_filled_scan200-jpeg35", 18,
                 [order_form("sara", D(18), pnr="short", mobile=3, days_before=5)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=35),
                 layout="B", family="liberation-sans", mark="filled"))
    out.append(C("o05_B-serif_ballotcheck_scan150-jpeg50-skew-2.5-noise", 19,
                 [order_form("per", D(19), bt=("Ersattning",), pnr="short", date_fmt="slash", mobile=4)],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=50, skew=-2.5, noise=9),
                 layout="B", family="dejavu-serif", mark="ballot-check"))
    out.append(C("o06_B-mono_drawnx_scan200-jpeg75-blur-noise", 19,
                 [order_form("karin", D(19), utl=("Utkorning",), pnr="nodash", date_fmt="short", mobile=0, title="Specialistsjuksköterska")],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=75, blur=0.9, noise=6),
                 layout="B", family="dejavu-mono", mark="drawn-x"))
    out.append(C("o07_C-sans_bracket_scan200-jpeg70-skew+3", 20,
                 [order_form("anna", D(20), bt=("Ersattning",), pnr="short", mobile=1)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70, skew=3.0),
                 layout="C", family="dejavu-sans", mark="bracket"))
    out.append(C("o08_C-serif_tick_scan300-jpeg40-skew-3", 20,
                 [order_form("lars", D(20), bt=("Fornyelse",), date_fmt="text", mobile=2, title="Distriktsläkare")],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=40, skew=-3.0),
                 layout="C", family="liberation-serif", mark="tick"))
    out.append(C("o09_C-mono_ballotx_scan150-png", 23,
                 [order_form("mohammed", D(23), pnr="nodash", date_fmt="compact", mobile=3)],
                 dict(type="scan", dpi=150, fmt="png"),
                 layout="C", family="dejavu-mono", mark="ballot-x"))
    # --- phone photos ------------------------------------------------------------------------
    out.append(C("o10_A-sans-alt_drawnx_photo", 23,
                 [order_form("anna", D(23), utl=("Utkorning",), date_fmt="text", mobile=4)],
                 dict(type="photo", jitter=0.04, shade=0.3),
                 layout="A", order="alt", family="liberation-sans", mark="drawn-x"))
    out.append(C("o11_B-serif-alt_tick_photo-strong", 24,
                 [order_form("bo", D(24), bt=("Ersattning",), pnr="short", mobile=0)],
                 dict(type="photo", jitter=0.07, shade=0.45, cast=(1.0, 0.93, 0.78)),
                 layout="B", order="alt", family="dejavu-serif", mark="tick"))
    out.append(C("o12_C-sans_filled_photo-inline-html", 24,
                 [order_form("sara", D(24), bt=("Fornyelse",), utl=("Utkorning",), pnr="full", mobile=1)],
                 dict(type="photo", jitter=0.05, shade=0.3, inline=True),
                 layout="C", family="liberation-sans", mark="filled", body="inline"))
    out.append(C("o13_A-serif_ballotcheck_photo-inline-html", 25,
                 [order_form("mohammed", D(25), date_fmt="slash", mobile=2)],
                 dict(type="photo", jitter=0.03, shade=0.25, cast=(0.92, 0.97, 1.0), inline=True),
                 layout="A", family="dejavu-serif", mark="ballot-check", body="inline"))
    # --- faxes --------------------------------------------------------------------------------
    out.append(C("o14_A-sans_filled_fax-png-dither-204x196", 25,
                 [order_form("karin", D(25), bt=("Fornyelse",), mobile=3)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=True, fmt="png"),
                 layout="A", family="dejavu-sans", mark="filled"))
    out.append(C("o15_A-sans_bracket_fax-png-threshold-204x98", 26,
                 [order_form("anna", D(26), pnr="full", mobile=4)],
                 dict(type="fax", xdpi=204, ydpi=98, dither=False, fmt="png"),
                 layout="A", family="liberation-sans", mark="bracket"))
    out.append(C("o16_C-serif_drawnx_fax-g4-tiff", 26,
                 [order_form("bo", D(26), utl=("Utkorning",), pnr="short", date_fmt="text", mobile=0)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4", skew=0.8),
                 layout="C", family="liberation-serif", mark="drawn-x"))
    out.append(C("o17_A-mono-alt_ballotx_fax-g4-tiff-dither", 27,
                 [order_form("lars", D(27), bt=("Ersattning",), pnr="short", mobile=1)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=True, fmt="g4"),
                 layout="A", order="alt", family="dejavu-mono", mark="ballot-x"))
    # --- orientation --------------------------------------------------------------------------
    out.append(C("o18_B-sans_tick_scan200-jpeg75-upside-down", 27,
                 [order_form("sara", D(27), utl=("Utkorning",), mobile=2)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=75, rotate=180),
                 layout="B", family="dejavu-sans", mark="tick"))
    out.append(C("o19_C-serif_ballotcheck_scan200-pdf-upside-down", 30,
                 [order_form("per", D(30), bt=("Fornyelse",), date_fmt="compact", mobile=3)],
                 dict(type="scan", dpi=200, fmt="pdf", quality=70, rotate=180, skew=0.7),
                 layout="C", family="dejavu-serif", mark="ballot-check"))
    out.append(C("o20_A-serif_filled_scan200-jpeg80-rotated90", 30,
                 [order_form("anna", D(30), bt=("Ersattning",), utl=("Utkorning",), date_fmt="short")],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=80, rotate=90),
                 layout="A", family="liberation-serif", mark="filled"))
    # --- several pages, several forms ----------------------------------------------------------
    out.append(C("o21_A-sans_tick_scan200-pdf-cover-letter-first", 31,
                 [order_form("mohammed", D(31), mobile=4, pnr="full")],
                 dict(type="scan", dpi=200, fmt="pdf", quality=70),
                 layout="A", family="liberation-sans", mark="tick", pages=["cover"]))
    out.append(C("o22_B-serif_drawnx_scan150-pdf-instruction-page-after", 32,
                 [order_form("bo", D(32), bt=("Fornyelse",), pnr="short", mobile=1)],
                 dict(type="scan", dpi=150, fmt="pdf", quality=75, skew=-1.0),
                 layout="B", family="dejavu-serif", mark="drawn-x", pages=["instr"]))
    out.append(C("o23_C-mono_bracket_scan200-pdf-two-orders", 32,
                 [order_form("anna", D(32), mobile=2), order_form("mohammed", D(32), bt=("Ersattning",),
                                                                 utl=("Utkorning",), pnr="short", mobile=3)],
                 dict(type="scan", dpi=200, fmt="pdf", quality=65),
                 layout="C", family="dejavu-mono", mark="bracket"))
    out.append(C("o24_A-sans_ballotx_scan150-pdf-order-and-deregistration", 33,
                 [order_form("mohammed", D(33), mobile=0, days_before=3),
                  dereg_form("anna", D(33), card_serial=4711, days_before=3)],
                 dict(type="scan", dpi=150, fmt="pdf", quality=70, skew=1.2),
                 layout="A", family="dejavu-sans", mark="ballot-x"))
    out.append(C("o25_B-sans-alt_ballotcheck_fax-g4-two-pages-cover", 33,
                 [order_form("sara", D(33), pnr="short", date_fmt="slash", mobile=4)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 layout="B", order="alt", family="liberation-sans", mark="ballot-check", pages=["cover"]))

    # --- rejected orders, scans (every one held for staff, SPEC §4.4) -------------------------
    out.append(C("r01_A-sans_tick_scan200-jpeg70_unsigned", 17,
                 [order_form("anna", D(17), mobile=0)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70),
                 layout="A", family="dejavu-sans", mark="tick", signature="none"))
    out.append(C("r02_B-serif_ballotx_photo_unsigned", 18,
                 [order_form("sara", D(18), pnr="short", mobile=1)],
                 dict(type="photo", jitter=0.04, shade=0.3),
                 layout="B", family="liberation-serif", mark="ballot-x", signature="none"))
    out.append(C("r03_C-mono_bracket_fax-g4_unsigned", 19,
                 [order_form("bo", D(19), pnr="short", mobile=2)],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 layout="C", family="dejavu-mono", mark="bracket", signature="none"))
    out.append(C("r04_A-serif_tick_scan200-jpeg80_both-utlamning", 20,
                 [order_form("mohammed", D(20), utl=("Utlamningsstalle", "Utkorning"), mobile=3)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=80),
                 layout="A", family="dejavu-serif", mark="tick"))
    out.append(C("r05_B-sans_filled_scan150-jpeg70_both-bestallningstyp", 21,
                 [order_form("karin", D(21), bt=("Nytt", "Fornyelse"), mobile=4, title="Specialistsjuksköterska")],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=70),
                 layout="B", family="dejavu-sans", mark="filled"))
    out.append(C("r06_C-sans_bracket_scan200-png_no-bestallningstyp", 22,
                 [order_form("lars", D(22), bt=(), mobile=0, title="Distriktsläkare")],
                 dict(type="scan", dpi=200, fmt="png"),
                 layout="C", family="liberation-sans", mark="bracket"))
    out.append(C("r07_A-mono_drawnx_scan200-jpeg60_missing-mobil", 23,
                 [order_form("anna", D(23), blank=("mobil",))],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=60),
                 layout="A", family="dejavu-mono", mark="drawn-x"))
    out.append(C("r08_B-serif_tick_scan300-jpeg60_date-too-old", 24,
                 [order_form("per", D(24), days_before=120, reasons=[("invalid_field", "datum")])],
                 dict(type="scan", dpi=300, fmt="jpeg", quality=60),
                 layout="B", family="dejavu-serif", mark="tick"))
    out.append(C("r09_C-sans_ballotcheck_scan150-jpeg70_provider-not-connected", 25,
                 [order_form("elin", D(25), mobile=1, reasons=[("provider_not_connected", "vardgivare_orgnr")])],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=70),
                 layout="C", family="dejavu-sans", mark="ballot-check"))
    out.append(C("r10_A-sans_filled_scan150-jpeg65_unsigned-missing-befattning", 26,
                 [order_form("bo", D(26), blank=("befattning",), pnr="short", mobile=2)],
                 dict(type="scan", dpi=150, fmt="jpeg", quality=65, skew=-1.0),
                 layout="A", family="liberation-sans", mark="filled", signature="none"))
    out.append(C("r11_B-mono_drawnx_scan200-jpeg55-upside-down_unsigned", 27,
                 [order_form("mohammed", D(27), pnr="short", mobile=3)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=55, rotate=180),
                 layout="B", family="dejavu-mono", mark="drawn-x", signature="none"))
    out.append(C("r12_C-serif_ballotx_photo-inline-html_unsigned", 30,
                 [order_form("anna", D(30), mobile=4)],
                 dict(type="photo", jitter=0.04, shade=0.3, inline=True),
                 layout="C", family="liberation-serif", mark="ballot-x", signature="none", body="inline"))

    # --- digital forms (reportlab text PDFs; rejections are not held) --------------------------
    out.append(C("t01_A-sans_tickglyph_textpdf_vector-signature", 16,
                 [order_form("anna", D(16), mobile=0)],
                 dict(type="text"), layout="A", family="dejavu-sans", mark="tick-glyph"))
    out.append(C("t02_B-serif_ballotx_textpdf_image-signature", 18,
                 [order_form("sara", D(18), bt=("Ersattning",), pnr="short", date_fmt="text", mobile=1)],
                 dict(type="text"), layout="B", family="liberation-serif", mark="ballot-x", signature="image"))
    out.append(C("t03_C-mono_bracket_textpdf_vector-signature", 20,
                 [order_form("per", D(20), bt=("Fornyelse",), utl=("Utkorning",), pnr="short", mobile=2)],
                 dict(type="text"), layout="C", family="dejavu-mono", mark="bracket"))
    out.append(C("t04_A-serif_ballotcheck_textpdf_unsigned", 22,
                 [order_form("bo", D(22), pnr="short", mobile=3)],
                 dict(type="text"), layout="A", family="dejavu-serif", mark="ballot-check", signature="none"))
    out.append(C("t05_B-sans_ballotx_textpdf_typed-name-only", 24,
                 [order_form("mohammed", D(24), mobile=4)],
                 dict(type="text"), layout="B", family="liberation-sans", mark="ballot-x", signature="typed"))
    out.append(C("t06_C-sans_bracket_textpdf_both-utlamning", 26,
                 [order_form("lars", D(26), utl=("Utlamningsstalle", "Utkorning"), pnr="short", mobile=0, title="Distriktsläkare")],
                 dict(type="text"), layout="C", family="dejavu-sans", mark="bracket"))
    out.append(C("t07_A-mono-alt_tickglyph_textpdf_unsigned-missing-datum", 27,
                 [order_form("karin", D(27), blank=("datum",), mobile=1)],
                 dict(type="text"), layout="A", order="alt", family="dejavu-mono", mark="tick-glyph",
                 signature="none"))

    out.append(C("t08_A-sans_acroform_unsigned", 28,
                 [order_form("sara", D(28), bt=("Ersattning",), mobile=2)],
                 dict(type="text", acroform=True), layout="A", family="liberation-sans", mark="acroform-radio",
                 signature="none"))
    out.append(C("t09_C-serif_acroform_vector-signature", 28,
                 [order_form("anna", D(28), utl=("Utkorning",), mobile=3)],
                 dict(type="text", acroform=True), layout="C", family="dejavu-serif", mark="acroform-radio"))

    # --- deregistrations --------------------------------------------------------------------------
    out.append(C("d01_A-sans_ballotx_scan200-jpeg70_ja", 17,
                 [dereg_form("anna", D(17), card_serial=100012)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=70),
                 layout="A", family="dejavu-sans", mark="ballot-x"))
    out.append(C("d02_B-serif_tick_photo_ja", 19,
                 [dereg_form("bo", D(19), card_serial=220334, date_fmt="text")],
                 dict(type="photo", jitter=0.05, shade=0.35),
                 layout="B", family="dejavu-serif", mark="tick"))
    out.append(C("d03_C-mono_bracket_scan150-png_ja", 20,
                 [dereg_form("sara", D(20), card_serial=3300991, pnr="full")],
                 dict(type="scan", dpi=150, fmt="png"),
                 layout="C", family="dejavu-mono", mark="bracket"))
    out.append(C("d04_A-serif_filled_fax-g4_nej", 23,
                 [dereg_form("mohammed", D(23), card_serial=5550101, klippt=("Nej",))],
                 dict(type="fax", xdpi=204, ydpi=196, dither=False, fmt="g4"),
                 layout="A", family="liberation-serif", mark="filled"))
    out.append(C("d05_B-sans-alt_drawnx_scan200-jpeg65-upside-down_employment-gone", 24,
                 [dereg_form("sven", D(24), unit="101", card_serial=7012345,
                             warnings=[("kiv_employment_missing", None)])],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=65, rotate=180),
                 layout="B", order="alt", family="liberation-sans", mark="drawn-x"))
    out.append(C("d06_C-serif_ballotcheck_textpdf_ja", 25,
                 [dereg_form("bo", D(25), card_serial=8800123, date_fmt="compact")],
                 dict(type="text"), layout="C", family="liberation-serif", mark="ballot-check"))
    out.append(C("d07_A-mono_bracket_textpdf_nej", 26,
                 [dereg_form("sara", D(26), card_serial=9100456, klippt=("Nej",))],
                 dict(type="text"), layout="A", family="dejavu-mono", mark="bracket"))
    out.append(C("d08_B-sans_ballotx_scan300-png_card-checksum-no-hsaid", 27,
                 [dereg_form("anna", D(27), card_serial=1200777, card_valid=False, show_hsaid=False)],
                 dict(type="scan", dpi=300, fmt="png"),
                 layout="B", family="dejavu-sans", mark="ballot-x"))
    out.append(C("d09_C-sans_filled_photo-inline-html_ja", 30,
                 [dereg_form("mohammed", D(30), card_serial=6543210, date_fmt="slash")],
                 dict(type="photo", jitter=0.04, shade=0.3, inline=True),
                 layout="C", family="dejavu-sans", mark="filled", body="inline"))
    out.append(C("d10_A-serif-alt_tick_fax-png-dither_nej", 31,
                 [dereg_form("lars", D(31), card_serial=2468013, klippt=("Nej",), date_fmt="short")],
                 dict(type="fax", xdpi=204, ydpi=196, dither=True, fmt="png"),
                 layout="A", order="alt", family="dejavu-serif", mark="tick"))
    out.append(C("d11_B-mono_ballotcheck_scan200-jpeg45-skew+2_ja", 32,
                 [dereg_form("per", D(32), card_serial=1357924)],
                 dict(type="scan", dpi=200, fmt="jpeg", quality=45, skew=2.0, noise=5),
                 layout="B", family="dejavu-mono", mark="ballot-check"))
    return out


# ---------------------------------------------------------------------------------------------
# Expected JSON
# ---------------------------------------------------------------------------------------------

def variant(case):
    return {"text": "text", "scan": "scan", "photo": "photo", "fax": "fax"}[case["capture"]["type"]]


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


def expected(case, out_rel):
    c = case["capture"]
    axes = {
        "variant": variant(case),
        "layout": case["layout"],
        "label_order": case["order"],
        "font": case["family"],
        "mark": case["mark"],
        "capture": capture_label(c),
        "signature": case["signature"],
        "pages": case["pages"],
        "inline_html": case["body"] == "inline",
        "forms": len(case["forms"]),
    }
    return {
        "source": f"{out_rel}/{case['name']}.eml",
        "message_id": f"<{case['name']}@family3.fixtures.tjid>",
        "decision": "processed",
        "ignored_reason": None,
        "cases": [expected_case(case, f) for f in case["forms"]],
        "axes": axes,
    }


def capture_label(c):
    t = c["type"]
    if t == "text":
        return "acroform" if c.get("acroform") else "text-pdf"
    if t == "photo":
        return "photo" + ("-inline" if c.get("inline") else "")
    if t == "fax":
        return f"fax-{c['fmt']}-{c['xdpi']}x{c['ydpi']}-{'dither' if c.get('dither') else 'threshold'}"
    s = f"scan{c['dpi']}-{c['fmt']}"
    if c["fmt"] in ("jpeg", "pdf"):
        s += f"-q{c.get('quality', 85)}"
    if c.get("skew"):
        s += f"-skew{c['skew']:+g}"
    if c.get("rotate"):
        s += f"-rot{c['rotate']}"
    if c.get("noise") or c.get("blur"):
        s += "-noise/blur"
    return s


# ---------------------------------------------------------------------------------------------
# Rendering and capture
# ---------------------------------------------------------------------------------------------

COVER = [
    "# Följebrev",
    "",
    "Hej TjänsteID-service!",
    "",
    "Här kommer en beställning av eTjänstekort för en ny medarbetare hos oss.",
    "Blanketten finns på nästa sida och är underskriven av mig som verksamhetschef.",
    "Hör gärna av er om något saknas.",
    "",
    "Med vänliga hälsningar",
]
INSTR = [
    "# Anvisningar",
    "",
    "Alla fält i blanketten ska fyllas i. Beställaren är alltid verksamhetschef för enheten.",
    "Personen måste vara registrerad i KIV och vårdgivaren ansluten till eTjänstekort.",
    "Kortet tillverkas av Telia och tar normalt 3-5 veckor.",
    "Kodkuvertet skickas till kortinnehavarens hemadress.",
    "Kortet hämtas ut med giltig legitimation på det valda stället.",
]


def form_style(case, form):
    f = dict(form)
    f.update(layout=case["layout"], order=case["order"], family=case["family"], mark=case["mark"],
             signature=case["signature"] if form["kind"] == "order" else "scribble",
             seed=zlib.crc32(case["name"].encode()))
    return f


def raster_pages(case, dpi):
    from draw import PilPage
    from forms import draw_form, draw_letter

    pages = []
    if "cover" in case["pages"]:
        p = PilPage(dpi)
        draw_letter(p, COVER + [case["forms"][0]["sender"][0]], case["family"])
        pages.append(p.img)
    for form in case["forms"]:
        p = PilPage(dpi)
        draw_form(p, form_style(case, form))
        pages.append(p.img)
    if "instr" in case["pages"]:
        p = PilPage(dpi)
        draw_letter(p, INSTR, case["family"])
        pages.append(p.img)
    return pages


def text_pdf(case, acro=False):
    from draw import PdfDoc
    from forms import draw_form

    doc = PdfDoc()
    doc.acro = acro
    for i, form in enumerate(case["forms"]):
        if i:
            doc.next_page()
        draw_form(doc, form_style(case, form))
    return doc.bytes()


def attachment(case):
    """(bytes, mime type, file name) of the email's one attachment (or inline image)."""
    import capture as cap

    c = case["capture"]
    rng = random.Random(zlib.crc32(case["name"].encode()) ^ 0x5EED)
    t = c["type"]
    if t == "text":
        return text_pdf(case, c.get("acroform", False)), "application/pdf", "blankett.pdf"
    if t == "photo":
        (page,) = raster_pages(case, 170)
        data, mime, ext = cap.phone_photo(page, rng, corners_jitter=c.get("jitter", 0.05),
                                          shade=c.get("shade", 0.3), cast=c.get("cast", (1.0, 0.95, 0.84)))
        return data, mime, f"IMG_20261{case['day']:03d}_0912.{ext}"
    if t == "fax":
        pages = [cap.fax(p, 200, c["xdpi"], c["ydpi"], c.get("dither", False), c.get("skew", 0.0))
                 for p in raster_pages(case, 200)]
        data, mime, ext = cap.encode_fax(pages, c["xdpi"], c["ydpi"], c["fmt"])
        return data, mime, f"fax_0312456789.{ext}"
    dpi = c["dpi"]
    out = []
    for page in raster_pages(case, dpi):
        im = cap.degrade(page, rng, skew=c.get("skew", 0.0), noise=c.get("noise", 0.0), blur=c.get("blur", 0.0))
        rot = c.get("rotate", 0)
        if rot == 180:
            im = im.transpose(Image.ROTATE_180)
        elif rot == 90:
            im = im.transpose(Image.ROTATE_90)
        fmt = "jpeg" if c["fmt"] in ("jpeg", "pdf") else "png"
        out.append(cap.encode(im, fmt, dpi, c.get("quality", 85))[0] if fmt == "jpeg" else cap.encode(im, fmt, dpi)[0])
    if c["fmt"] == "pdf":
        return cap.to_pdf(out), "application/pdf", "skanning.pdf"
    assert len(out) == 1
    if c["fmt"] == "jpeg":
        return out[0], "image/jpeg", "skanning.jpg"
    return out[0], "image/png", "skanning.png"


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
    date = email_date(case["day"], 9 + case["day"] % 7, (case["day"] * 7) % 60)
    kinds = {f["kind"] for f in case["forms"]}
    subject = "Beställning eTjänstekort" if kinds == {"order"} else (
        "Avregistrering eTjänstekort" if kinds == {"deregistration"} else "Beställning och avregistrering")
    data, mime, fname = att
    tag = zlib.crc32(case["name"].encode())
    head = [
        f"From: {enc_header(name)} <{mail}>",
        "To: =?utf-8?q?Tj=C3=A4nsteID-service?= <tjansteid@vgregion.se>",
        f"Subject: {enc_header(subject)}",
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S %z')}",
        f"Message-ID: <{case['name']}@family3.fixtures.tjid>",
        "MIME-Version: 1.0",
    ]
    text = f"Hej!\n\nSe bifogad blankett.\n\nMed vänlig hälsning\n{name}\n"
    if case["body"] == "inline":
        rel = f"=_rel_{tag:08x}"
        cid = f"image001.{tag:08x}@family3"
        html = ("<html><body><p>Hej!</p><p>H&auml;r &auml;r blanketten (fotad med mobilen):</p>"
                f"<p><img src=\"cid:{cid}\" width=\"600\" alt=\"blankett\"></p>"
                f"<p>Med v&auml;nlig h&auml;lsning<br>{name}</p></body></html>\n")
        head.append(f'Content-Type: multipart/related; boundary="{rel}"; type="text/html"')
        parts = [
            f"--{rel}",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            qp_utf8(html),
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
        mix = f"=_mix_{tag:08x}"
        head.append(f'Content-Type: multipart/mixed; boundary="{mix}"')
        parts = [
            "This is a multi-part message in MIME format.",
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
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "family3"))
    ap.add_argument("--json-only", action="store_true", help="write only the expected .json files")
    ap.add_argument("--only", nargs="*", help="only these case names (prefix match)")
    ap.add_argument("--previews", help="also write each page as PNG into this directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out_rel = "fixtures/family3"
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


from PIL import Image  # noqa: E402  (after sys.path is set; used by attachment())

if __name__ == "__main__":
    main()
