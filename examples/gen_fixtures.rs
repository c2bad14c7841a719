//! Generates the golden test emails under fixtures/mail (and fixtures/mail-auth), and, with
//! `--golden`, the expected `process --json` output beside each (`NAME.json`, without
//! `case_id`). Review a changed .json before committing it: it is the contract.
//!
//!     cargo run --example gen_fixtures            # write the .eml files
//!     cargo run --example gen_fixtures -- --golden  # and (re)write the .json files

use std::collections::BTreeMap;
use std::path::Path;

use tjid_intake::forms::spec::FormKind;
use tjid_testkit::mime::{build, Body, MailSpec, NameEncoding, Part};
use tjid_testkit::pdf_writer::{example_values, render, render_text_page, FilledForm, Layout};

const MANAGER: &str = "Örjan Lindqvist <orjan.lindqvist@vgregion.se>";
const DATE: &str = "Wed, 18 Nov 2026 10:00:00 +0100";

type Values = BTreeMap<String, String>;

fn order() -> Values {
    example_values(FormKind::Order)
}

fn dereg() -> Values {
    example_values(FormKind::Deregistration)
}

fn with(mut v: Values, changes: &[(&str, Option<&str>)]) -> Values {
    for (k, val) in changes {
        match val {
            Some(x) => {
                v.insert(k.to_string(), x.to_string());
            }
            None => {
                v.remove(*k);
            }
        }
    }
    v
}

fn pdf(kind: FormKind, layout: Layout, values: &Values) -> Vec<u8> {
    render(&[FilledForm {
        kind,
        layout,
        values,
    }])
    .expect("fixture form renders")
}

fn mail(name: &str, subject: &str) -> MailSpec {
    MailSpec::new(MANAGER, subject, &format!("<{name}@fixtures.tjid>"), DATE)
}

fn file(name: &str, content_type: &str, data: Vec<u8>, encoding: NameEncoding) -> Part {
    Part::File {
        name: name.into(),
        content_type: content_type.into(),
        data,
        encoding,
    }
}

/// An email from the unit's manager with one form attached, `changes` applied to the example values.
fn form_mail(
    name: &str,
    kind: FormKind,
    layout: Layout,
    changes: &[(&str, Option<&str>)],
) -> MailSpec {
    let base = match kind {
        FormKind::Order => order(),
        FormKind::Deregistration => dereg(),
    };
    mail(name, kind.title()).attach_pdf(
        &format!("{}.pdf", kind.form_id()),
        pdf(kind, layout, &with(base, changes)),
    )
}

fn sent_by(mut spec: MailSpec, from: &str) -> MailSpec {
    spec.from = from.into();
    spec
}

fn with_body(mut spec: MailSpec, body: Body) -> MailSpec {
    spec.body = body;
    spec
}

#[rustfmt::skip]
fn fixtures() -> Vec<(&'static str, MailSpec)> {
    use FormKind::{Deregistration as D, Order as O};
    use Layout::{Fillable, Legacy, SameLine, SameLineTwoPages, Table};
    let anna = "Anna-Karin Åström <anna-karin.astrom@vgregion.se>";
    let karin = "Karin Berg <karin.berg@vgregion.se>";
    let mohammed: &[(&str, Option<&str>)] = &[
        ("fornamn", Some("Mohammed")), ("efternamn", Some("Al-Sayed")), ("personnummer", Some("800161-3291")),
        ("epost", Some("Mohammed.Al-Sayed@VGREGION.SE")), ("mobil", Some("+46 (0)70 987 65 43")), ("befattning", Some("Läkare")),
        ("bestallningstyp", Some("Ersattning")), ("utlamning", Some("Utkorning")), ("utlamningsstalle", None), ("datum", Some("18 november 2026")),
    ];
    let friskvard: &[(&str, Option<&str>)] = &[
        ("vardgivare_namn", Some("Friskvård Syd AB")), ("vardgivare_orgnr", Some("556677-1233")), ("vardenhet_namn", Some("Friskvård Syd Borås")),
        ("vardenhet_hsaid", Some("SE5566771233-E000000000001")), ("fornamn", Some("Elin")), ("efternamn", Some("Ung")), ("personnummer", Some("19991231-2460")),
        ("epost", Some("elin.ung@friskvardsyd.se")), ("vc_namn", Some("Eva Nord")), ("vc_epost", Some("eva.nord@friskvardsyd.se")),
    ];
    let sole_trader: &[(&str, Option<&str>)] = &[
        ("vardgivare_namn", Some("Tandläkare Per Karlsson")), ("vardgivare_orgnr", Some("19650302-4561")), ("vardenhet_namn", Some("Tandläkare Karlsson")),
        ("vardenhet_hsaid", Some("SE6503024561-E000000000001")), ("fornamn", Some("Per")), ("efternamn", Some("Karlsson")), ("personnummer", Some("196503024561")),
        ("epost", Some("per@tandlakarekarlsson.se")), ("vc_namn", Some("Per Karlsson")), ("vc_epost", Some("per@tandlakarekarlsson.se")),
        ("befattning", Some("Tandläkare")), ("utlamningsstalle", Some("Receptionen, Regionens hus")),
    ];
    let second = with(order(), mohammed);

    let mut two_attachments = mail("two_attachments", "Beställning och avregistrering");
    two_attachments.parts.push(file("följebrev.pdf", "application/pdf", render_text_page(&["Hej!", "Här kommer en beställning av eTjänstekort för två medarbetare."]), NameEncoding::Rfc2231));
    two_attachments.parts.push(file("beställning.pdf", "application/pdf", pdf(O, SameLine, &second), NameEncoding::Rfc2231));
    two_attachments.parts.push(file("avregistrering.pdf", "application/octet-stream", pdf(D, Table, &dereg()), NameEncoding::Plain));

    let inner = sent_by(MailSpec::new(anna, "Blankett", "<inner-1@fixtures.tjid>", "Tue, 17 Nov 2026 16:20:00 +0100"), anna)
        .attach_pdf("blankett.pdf", pdf(O, SameLine, &order()));
    let mut forwarded = with_body(mail("forwarded_message", "VB: Blankett"), Body::Plain("Vidarebefordrar beställningen, som jag godkänner.\n\nÖrjan\n".into()));
    forwarded.parts.push(Part::Forwarded(Box::new(inner)));

    let mut names = mail("rfc2231_and_rfc2047_names", "Blankett med svenska tecken");
    names.parts.push(file("Beställning för Anna-Karin Åström, Vårdcentralen Ekmansgatan.pdf", "application/pdf", pdf(O, SameLine, &order()), NameEncoding::Rfc2231));
    names.parts.push(file("Avregistrering Sven Gammal.pdf", "application/pdf", pdf(D, SameLine, &with(dereg(), &[("namn", Some("Sven Gammal")), ("personnummer", Some("550505-6787"))])), NameEncoding::Rfc2047));

    let mut broken = mail("unreadable_broken_pdf", "Beställning");
    broken.parts.push(file("bestallning.pdf", "application/pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer garbage".to_vec(), NameEncoding::Plain));
    broken.parts.push(file("lasmig.txt", "text/plain", b"Ingen blankett".to_vec(), NameEncoding::Plain));

    let mut bounce = with_body(
        sent_by(mail("ignored_bounce", "Undelivered Mail Returned to Sender"), "Mail Delivery System <MAILER-DAEMON@mx.vgregion.se>"),
        Body::Plain("This is the mail system at host mx.vgregion.se.\n\nI'm sorry to have to inform you that your message could not be delivered.\n".into()),
    );
    bounce.headers.push(("Return-Path".into(), "<>".into()));
    let mut auto_reply = with_body(mail("ignored_auto_reply", "Autosvar: Beställning"), Body::Plain("Jag är på semester till och med 30 november.\n".into()));
    auto_reply.headers.push(("Auto-Submitted".into(), "auto-replied".into()));

    vec![
        // Where a form can be.
        ("order_acroform_ok", form_mail("order_acroform_ok", O, Fillable, &[])),
        ("order_same_line_ok", form_mail("order_same_line_ok", O, SameLine, &[])),
        ("order_table_ok", form_mail("order_table_ok", O, Table, &[])),
        ("order_legacy_layout_ok", form_mail("order_legacy_layout_ok", O, Legacy, &[])),
        ("order_continued_on_page_2", form_mail("order_continued_on_page_2", O, SameLineTwoPages, &[])),
        ("two_forms_in_one_pdf", mail("two_forms_in_one_pdf", "Två beställningar").attach_pdf("bestallningar.pdf",
            render(&[FilledForm { kind: O, layout: SameLine, values: &order() }, FilledForm { kind: O, layout: Table, values: &second }]).unwrap())),
        ("two_attachments", two_attachments),
        ("forwarded_message", forwarded),
        ("rfc2231_and_rfc2047_names", names),
        // Reasons on orders.
        // SPEC §2.2: an empty signature box (the drawn signature left out).
        ("order_unsigned", form_mail("order_unsigned", O, SameLine, &[("underskrift", None)])),
        ("order_acroform_unsigned", form_mail("order_acroform_unsigned", O, Fillable, &[("underskrift", None)])),
        ("order_table_unsigned", form_mail("order_table_unsigned", O, Table, &[("underskrift", None)])),
        ("order_missing_fields", form_mail("order_missing_fields", O, SameLine, &[
            ("mobil", None), ("befattning", Some("")), ("datum", Some("")), ("bestallningstyp", Some("")), ("utlamningsstalle", None)])),
        ("order_invalid_fields", form_mail("order_invalid_fields", O, SameLine, &[
            ("personnummer", Some("19121212-1213")), ("vardgivare_orgnr", Some("232100-0132")), ("vardenhet_hsaid", Some("SE232100013-E1")),
            ("epost", Some("anna.astrom@")), ("mobil", Some("031-345 67 00")), ("datum", Some("2026-07-01")),
            ("utlamning", Some("Utlamningsstalle,Utkorning")), ("vc_epost", Some("orjan lindqvist@vgregion"))])),
        ("order_person_not_in_kiv", form_mail("order_person_not_in_kiv", O, SameLine, &[
            ("fornamn", Some("Nils")), ("efternamn", Some("Okänd")), ("personnummer", Some("660606-1239"))])),
        ("order_person_not_at_unit", form_mail("order_person_not_at_unit", O, SameLine, &[
            ("fornamn", Some("Bo")), ("efternamn", Some("Ek")), ("personnummer", Some("8209303455"))])),
        ("order_unit_not_in_kiv", form_mail("order_unit_not_in_kiv", O, SameLine, &[("vardenhet_hsaid", Some("se2321000131-E000000009999"))])),
        ("order_provider_not_connected", sent_by(form_mail("order_provider_not_connected", O, SameLine, friskvard), "Eva Nord <eva.nord@friskvardsyd.se>")),
        ("order_sender_not_manager", sent_by(form_mail("order_sender_not_manager", O, SameLine, &[]), anna)),
        ("order_name_mismatch", form_mail("order_name_mismatch", O, SameLine, &[("fornamn", Some("Annika")), ("efternamn", Some("Åströmm"))])),
        ("order_first_name_part_ok", form_mail("order_first_name_part_ok", O, Table, &[
            ("fornamn", Some("Karin")), ("personnummer", Some("121212+1212")), ("datum", Some("17/11 2026"))])),
        ("order_sole_trader", sent_by(form_mail("order_sole_trader", O, Fillable, sole_trader), "Per Karlsson <Per@TandlakareKarlsson.se>")),
        ("order_in_body", with_body(mail("order_in_body", "Beställning av kort"), Body::Alternative {
            plain: "Hej, vi vill beställa ett kort.\n\nFörnamn: Anna-Karin\nEfternamn: Åström\nPersonnummer: 19121212-1212\nBefattning: Sjuksköterska\nMobiltelefon: 070-123 45 67\n\nMvh Örjan\n".into(),
            html: "<p>Hej, vi vill beställa ett kort.</p><p>Förnamn: Anna-Karin<br>Efternamn: Åström<br>Personnummer: 19121212-1212<br>Befattning: Sjuksköterska</p>".into(),
        })),
        ("no_form_question", with_body(mail("no_form_question", "Fråga om kort"), Body::Plain("Hej!\n\nHur beställer vi eTjänstekort till en ny medarbetare?\n\nMvh Örjan\n".into()))),
        ("no_form_cover_letter_only", mail("no_form_cover_letter_only", "Beställning").attach_pdf("brev.pdf",
            render_text_page(&["Hej!", "Här kommer en beställning av eTjänstekort.", "Blanketten skickas separat.", "Med vänlig hälsning, Örjan"]))),
        ("unreadable_broken_pdf", broken),
        // Deregistrations.
        ("dereg_body_notice", with_body(mail("dereg_body_notice", "Avregistrering av eTjänstekort"), Body::Plain(
            "Hej!\n\nAvregistrering av eTjänstekort\n\nKortinnehavarens namn: Anna-Karin Åström\nPersonnummer: 121212+1212\nKortnummer: 9752 2679 0010 0000 120\nVårdenhet: Vårdcentralen Ekmansgatan\nKlippt kort mottaget: Ja\nVerksamhetschef: Örjan Lindqvist\nDatum: 2026-11-18\n\nMed vänlig hälsning\nÖrjan Lindqvist\nVerksamhetschef\n".into()))),
        ("dereg_html_only", with_body(mail("dereg_html_only", "Avregistrera kort"), Body::Html(
            "<html><body><p>Hej!</p><table><tr><td>Kortinnehavarens namn:</td><td>Sven Gammal</td></tr></table><p>Personnummer: 19550505-6787<br>Kortnummer: 9752267900100000120<br>V&aring;rdenhet: V&aring;rdcentralen Ekmansgatan<br>V&aring;rdenhetens HSA-id: SE2321000131-E000000000101<br>Klippt kort mottaget: Ja<br>Verksamhetschef: &Ouml;rjan Lindqvist<br>Datum: 2026-11-17</p></body></html>".into()))),
        ("dereg_table_ok", form_mail("dereg_table_ok", D, Table, &[])),
        ("dereg_acroform_cut_card_no", form_mail("dereg_acroform_cut_card_no", D, Fillable, &[("klippt_kort", Some("Nej"))])),
        ("dereg_cut_card_missing", form_mail("dereg_cut_card_missing", D, SameLine, &[("klippt_kort", None)])),
        ("dereg_warnings", sent_by(form_mail("dereg_warnings", D, SameLine, &[
            ("namn", Some("Anna Åberg")), ("kortnummer", Some("9752 2679 0010 0000 121")), ("vardenhet_hsaid", None),
            ("vardenhet_namn", Some("Vårdcentralen Finns Inte"))]), karin)),
        ("dereg_employment_gone_wrong_manager", sent_by(form_mail("dereg_employment_gone_wrong_manager", D, SameLine, &[
            ("namn", Some("Bo Ek")), ("personnummer", Some("198209303455"))]), karin)),
        ("dereg_invalid_card", form_mail("dereg_invalid_card", D, Legacy, &[
            ("kortnummer", Some("1234 5678 9012 3456 789")), ("vardenhet_hsaid", Some("SE2321000131-E000000000101"))])),
        // Ignored.
        ("ignored_own_mail", sent_by(form_mail("ignored_own_mail", O, SameLine, &[]), "TjänsteID-service <tjansteid-intake@vgregion.se>")),
        ("ignored_bounce", bounce),
        ("ignored_auto_reply", auto_reply),
        ("ignored_out_of_office_subject", with_body(mail("ignored_out_of_office_subject", "Frånvaro: Re: Beställning"), Body::Plain("Jag är ledig.\n".into()))),
        // Sorts after order_same_line_ok, whose Message-ID it repeats.
        ("zz_duplicate_of_order_same_line_ok", form_mail("order_same_line_ok", O, SameLine, &[])),
    ]
}

fn auth_fixtures() -> Vec<(&'static str, MailSpec)> {
    let form = pdf(FormKind::Order, Layout::SameLine, &order());
    let mut forged = mail("auth_forged_lower_header", "Beställning");
    forged.headers.push(("Authentication-Results".into(), "mx.vgregion.se; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=vgregion.se".into()));
    forged.headers.push((
        "Authentication-Results".into(),
        "mx.vgregion.se; dmarc=pass header.from=vgregion.se".into(),
    ));
    let forged = forged.attach_pdf("b.pdf", form.clone());
    let mut other = mail("auth_other_server_only", "Beställning");
    other.headers.push((
        "Authentication-Results".into(),
        "relay.evil.example; dmarc=pass header.from=vgregion.se".into(),
    ));
    let other = other.attach_pdf("b.pdf", form.clone());
    let mut ok = mail("auth_pass", "Beställning");
    ok.headers.push(("Authentication-Results".into(), "mx.vgregion.se 1; spf=pass smtp.mailfrom=vgregion.se;\r\n dkim=pass header.d=vgregion.se; dmarc=pass (p=reject) header.from=vgregion.se".into()));
    let ok = ok.attach_pdf("b.pdf", form);
    let mut none = mail("auth_no_form_unauthenticated", "Fråga");
    none.body = Body::Plain("Hej, en fråga.\n".into());
    vec![
        ("auth_forged_lower_header", forged),
        ("auth_other_server_only", other),
        ("auth_pass", ok),
        ("auth_no_form_unauthenticated", none),
    ]
}

fn write_all(dir: &Path, set: &[(&str, MailSpec)]) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "eml") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    for (name, spec) in set {
        std::fs::write(dir.join(format!("{name}.eml")), build(spec)).unwrap();
    }
    println!("wrote {} emails to {}", set.len(), dir.display());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    write_all(&root.join("fixtures/mail"), &fixtures());
    write_all(&root.join("fixtures/mail-auth"), &auth_fixtures());
    if std::env::args().any(|a| a == "--golden") {
        for (dir, config) in [
            ("fixtures/mail", "tests/golden.toml"),
            ("fixtures/mail-auth", "tests/golden-auth.toml"),
        ] {
            let out = std::process::Command::new(env!("CARGO"))
                .current_dir(root)
                .args([
                    "run",
                    "-q",
                    "--",
                    "--config",
                    config,
                    "process",
                    "--dry-run",
                    "--json",
                    dir,
                ])
                .output()
                .expect("run tjid-intake");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                for case in v["cases"].as_array_mut().unwrap() {
                    case.as_object_mut().unwrap().remove("case_id");
                }
                let source = v["source"].as_str().unwrap().to_string();
                let json_path = root.join(source.replace(".eml", ".json"));
                std::fs::write(&json_path, serde_json::to_string_pretty(&v).unwrap() + "\n")
                    .unwrap();
            }
            println!("wrote golden outputs for {dir}");
        }
    }
}
