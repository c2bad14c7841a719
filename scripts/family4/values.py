"""Values of the fourth fixture family: the people, units and providers of fixtures/kiv.ldif and
fixtures/providers.csv, value formats, and the expected fields/reasons of a form.

Copied from scripts/family3/generate.py (the value tables and the expected-output logic need not
differ between families; only drawing and capture do), with a few additions for family4's own
cases (a person not in KIV, a personnummer with a bad check digit). A copy rather than an import,
so that a change to family3 never changes family4's expected JSON.
"""

import datetime as dt

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
    # family4: a valid personnummer that KIV does not hold (person_not_in_kiv)
    "nils": dict(fn="Nils", sn="Holm", pnr="19660606-1239", short="660606-1239", mail="nils.holm@halsanvast.se",
                 title="Sjuksköterska", unit="301"),
    "orjan": dict(fn="Örjan", sn="Lindqvist", pnr="19700101-1233", short="700101-1233",
                  mail="orjan.lindqvist@vgregion.se", title="Verksamhetschef", unit="101"),
}

MOBILES = [("070-123 45 67", "+46701234567"), ("+46 73 555 12 34", "+46735551234"),
           ("0721-23 45 67", "+46721234567"), ("0046 76 987 65 43", "+46769876543"),
           ("0702 34 56 78", "+46702345678"),
           # family4's additions
           ("0760-98 76 54", "+46760987654"), ("+46701112233", "+46701112233"), ("073-445 56 67", "+46734455667")]

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
